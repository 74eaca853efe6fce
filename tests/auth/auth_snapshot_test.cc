// Auth state reaches a member added after users, roles and tokens exist (--snapshot-count 20, so
// the old member has compacted its WAL behind snapshots). On cairn, with
// --experimental-snapshot-catchup-entries 10 (etcd 3.5's flag; 3.4 keeps 5,000 entries and has no
// such flag), the new member must install the leader's snapshot, and its log says it did; on etcd
// 3.4 it replays the log. After joining, the new member
// enforces the same auth: no identity, wrong prefix and right prefix answer as on the old member,
// a JWT issued before it joined is honoured there, a token issued later through another member
// too; and after a kill -9 and restart of the new member (from its own snapshot and WAL), still.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/auth/auth_api.h"
#include "tests/harness/cluster_ops.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

constexpr int kSnapshotCount = 20;
constexpr int kCatchUpEntries = 10;  // cairn: fewer than the writes below, so a snapshot is sent

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Param {
  ServerKind kind;
  bool jwt;
};

class AuthSnapshotTest : public ::testing::TestWithParam<Param> {};

// The checks on the new member `api`; `early` is a token issued before it joined (JWT only).
void ExpectSameAuth(Api& api, Api& old_member, const std::string& early) {
  ExpectEventually([&] { return Get(api, "", "app/last"); }, {3, "etcdserver: user name is empty"},
                   "no identity");
  std::string fresh = old_member.Token("app", "apw");
  ExpectEventually([&] { return Put(api, fresh, "app/new"); }, {}, "fresh token, own prefix");
  EXPECT_EQ(Put(api, fresh, "other/x"), (Answer{7, "etcdserver: permission denied"}));
  if (!early.empty()) {
    EXPECT_EQ(Get(api, early, "app/last"), Answer{});
  }
}

TEST_P(AuthSnapshotTest, NewMemberEnforcesTheSameAuth) {
  JwtKeys keys("RS256");
  ASSERT_TRUE(keys.ok());
  std::vector<std::string> args = {"--bcrypt-cost", "4",
                                   absl::StrCat("--snapshot-count=", kSnapshotCount)};
  if (GetParam().kind == ServerKind::kCairn) {
    args.push_back(absl::StrCat("--experimental-snapshot-catchup-entries=", kCatchUpEntries));
    args.push_back("--log-level=info");  // after the harness's level: the install line is info
  }
  if (GetParam().jwt) {
    args.push_back("--auth-token");
    args.push_back(keys.Spec());
  }
  auto c =
      ServerCluster::Start({.kind = GetParam().kind, .extra_args = args, .peer_urls_always = true});
  ASSERT_TRUE(c.ok()) << c.status();
  ServerCluster& cluster = **c;
  Api a0(cluster.ClientEndpoint(0));
  Enable(a0);
  std::string app = a0.Token("app", "apw");
  for (int i = 0; i < 3 * kSnapshotCount; ++i) {
    MustOk(Put(a0, app, i + 1 == 3 * kSnapshotCount ? "app/last" : absl::StrCat("app/", i)), "put");
  }
  auto slot = cluster.PrepareMember();
  ASSERT_TRUE(slot.ok()) << slot.status();
  std::string root = a0.Token("root", "rootpw");
  MemberAddRequest add;
  add.add_peerurls(cluster.PeerUrl(*slot));
  MemberAddResponse added;
  MustOk(a0.Call(root, [&](auto* ctx) { return a0.cluster->MemberAdd(ctx, add, &added); }),
         "member add");
  ASSERT_TRUE(cluster.StartAddedMember(*slot).ok()) << cluster.LogTail(*slot);
  Api a1(cluster.ClientEndpoint(*slot));
  std::string joined = a0.Token("app", "apw");  // a simple token reaches a1 with its entry
  ExpectEventually([&] { return Get(a1, joined, "app/last"); }, {}, "caught up");
  if (GetParam().kind == ServerKind::kCairn) {
    // The applier logs each install (server/etcdserver/applier.cc).
    EXPECT_NE(ReadAll(cluster.LogPath(*slot)).find("installed snapshot"), std::string::npos)
        << "the new member caught up without a snapshot install: " << cluster.LogTail(*slot);
  }
  const std::string early = GetParam().jwt ? app : "";
  ExpectSameAuth(a1, a0, early);
  cluster.Kill(*slot);
  ASSERT_TRUE(cluster.Restart(*slot).ok());
  Api a1b(cluster.ClientEndpoint(*slot));
  ExpectSameAuth(a1b, a0, early);
}

std::vector<Param> Params() {
  std::vector<Param> out;
  for (ServerKind kind : TestedServerKinds()) {
    for (bool jwt : {false, true}) out.push_back({kind, jwt});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Servers, AuthSnapshotTest, ::testing::ValuesIn(Params()),
                         [](const auto& info) {
                           return ServerKindName(info.param.kind) +
                                  (info.param.jwt ? "Jwt" : "Simple");
                         });

}  // namespace
}  // namespace cairn::testing
