// etcdctl's `user`, `role` and `auth` commands and `--user` against etcd 3.4 and cairn: the same
// command list runs against both, and every command's exit code, stdout and "Error:" line must be
// equal (differential). A few outputs are also pinned so the comparison cannot pass vacuously.
// Then auth state survives kill -9 and a restart (both servers).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

struct Outcome {
  int exit_code = 0;
  std::string out;
  std::string error;  // the "Error: ..." line, if any
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{exit " << o.exit_code << ", out '" << o.out << "', " << o.error << "}";
}

Outcome Ctl(const ServerCluster& c, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {EtcdctlPath(), "--endpoints", c.ClientUrls(),
                                   "--command-timeout=20s"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = RunCommand(argv, "", 60000);
  Outcome o{r.exit_code, r.out, ""};
  for (absl::string_view line : absl::StrSplit(r.err, '\n')) {
    if (absl::StartsWith(line, "Error:")) o.error = std::string(line);
  }
  return o;
}

std::vector<std::string> AuthArgs() {
  // cost 4: etcd's minimum, so the test spends no time hashing.
  return {"--bcrypt-cost", "4"};
}

TEST(AuthEtcdctlTest, SameAnswersAsEtcd) {
  if (!ServerAvailable(ServerKind::kEtcd)) GTEST_FAIL() << "etcd is required for this test";
  auto etcd = ServerCluster::Start({.kind = ServerKind::kEtcd, .extra_args = AuthArgs()});
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  auto cairn = ServerCluster::Start({.kind = ServerKind::kCairn, .extra_args = AuthArgs()});
  ASSERT_TRUE(cairn.ok()) << cairn.status();

  const std::string snapshot_path = ::testing::TempDir() + "/auth-etcdctl-denied.db";
  const std::vector<std::string> root = {"--user", "root:rootpw"};
  const std::vector<std::string> alice = {"--user", "alice:apw"};
  auto as = [](const std::vector<std::string>& who, std::vector<std::string> args) {
    args.insert(args.begin(), who.begin(), who.end());
    return args;
  };
  const std::vector<std::vector<std::string>> script = {
      {"auth", "enable"},  // no root user yet
      {"user", "add", "root:rootpw"},
      {"user", "add", "root:again"},
      {"role", "add", "r1"},
      {"role", "add", "r1"},
      {"role", "grant-permission", "r1", "read", "/a/", "--prefix"},
      {"role", "grant-permission", "r1", "readwrite", "k1"},
      {"role", "grant-permission", "r1", "write", "w1", "w5"},
      {"role", "grant-permission", "r1", "read", "--from-key", "z"},
      {"role", "grant-permission", "nope", "read", "k"},
      {"role", "get", "r1"},
      {"role", "get", "nope"},
      {"user", "add", "alice:apw"},
      {"user", "grant-role", "alice", "r1"},
      {"user", "grant-role", "alice", "nope"},
      {"user", "grant-role", "ghost", "r1"},
      {"user", "revoke-role", "alice", "r9"},
      {"user", "get", "alice"},
      {"user", "get", "ghost"},
      {"role", "revoke-permission", "r1", "nokey"},
      {"put", "k1", "before"},
      {"auth", "enable"},  // etcdctl creates the root role and grants it to root
      {"auth", "enable"},
      {"get", "k1"},
      {"put", "k1", "x"},
      as(alice, {"get", "k1"}),
      as(alice, {"put", "k1", "by-alice"}),
      as(alice, {"get", "k1", "--print-value-only"}),
      as(alice, {"put", "/a/x", "v"}),
      as(alice, {"get", "/a/", "--prefix"}),
      as(alice, {"get", "/a/", "/b"}),
      as(alice, {"put", "w2", "v"}),
      as(alice, {"get", "w2"}),
      as(alice, {"get", "zz"}),
      as(alice, {"del", "k1", "--prev-kv"}),
      as(alice, {"user", "list"}),
      as(alice, {"user", "get", "alice"}),
      as(alice, {"user", "get", "root"}),
      as(alice, {"role", "get", "r1"}),
      as(alice, {"role", "get", "root"}),
      as(alice, {"role", "list"}),
      as(alice, {"user", "add", "eve:x"}),
      as(alice, {"compaction", "1"}),
      as(alice, {"auth", "disable"}),
      {"--user", "alice:wrong", "get", "k1"},
      {"--user", "ghost:pw", "get", "k1"},
      as(root, {"user", "list"}),
      as(root, {"role", "list"}),
      as(root, {"role", "get", "root"}),
      as(root, {"user", "get", "root"}),
      as(root, {"user", "delete", "root"}),
      as(root, {"role", "delete", "root"}),
      as(root, {"user", "revoke-role", "root", "root"}),
      as(root, {"role", "revoke-permission", "r1", "k1"}),
      // Maintenance that reads or rewrites the whole keyspace is root only (index 54..58).
      as(alice, {"defrag"}),
      as(alice, {"endpoint", "hashkv"}),
      as(alice, {"snapshot", "save", snapshot_path}),
      {"snapshot", "save", snapshot_path},
      {"endpoint", "hashkv"},
      as(alice, {"put", "k1", "denied-now"}),
      as(root, {"user", "passwd", "alice", "--interactive=false"}),
      as(root, {"user", "add", "bob", "--no-password"}),
      {"--user", "bob:", "get", "k1"},
      as(root, {"user", "delete", "alice"}),
      as(alice, {"get", "/a/x"}),
      as(root, {"role", "delete", "r1"}),
      as(root, {"role", "list"}),
      as(root, {"get", "k1", "--print-value-only"}),
      as(root, {"auth", "disable"}),
      {"get", "k1", "--print-value-only"},
      {"user", "list"},
  };
  std::vector<Outcome> etcd_out;
  for (const auto& cmd : script) {
    Outcome e = Ctl(**etcd, cmd);
    Outcome c = Ctl(**cairn, cmd);
    EXPECT_EQ(c, e) << "etcdctl " << absl::StrJoin(cmd, " ");
    etcd_out.push_back(e);
  }
  // Pinned: the comparison above is not between two broken servers.
  EXPECT_EQ(etcd_out[0].error, "Error: etcdserver: root user does not exist");
  EXPECT_EQ(etcd_out[21].out, "Authentication Enabled\n");
  EXPECT_EQ(etcd_out[23].error, "Error: etcdserver: user name is empty");
  EXPECT_EQ(etcd_out[27].out, "by-alice\n");
  EXPECT_EQ(etcd_out[28].error, "Error: etcdserver: permission denied");
  EXPECT_EQ(etcd_out[44].error,
            "Error: etcdserver: authentication failed, invalid user ID or password");
  EXPECT_EQ(etcd_out[50].error, "Error: etcdserver: invalid auth management");
  EXPECT_NE(etcd_out[54].exit_code, 0);  // defrag prints no "Error:" line
  EXPECT_EQ(etcd_out[55].error, "Error: rpc error: code = Unknown desc = auth: permission denied");
  EXPECT_EQ(etcd_out[56].error, "Error: rpc error: code = Unknown desc = auth: permission denied");
  EXPECT_EQ(etcd_out[57].error, "Error: rpc error: code = Unknown desc = auth: user name is empty");
  EXPECT_EQ(etcd_out[58].error, "Error: rpc error: code = Unknown desc = auth: user name is empty");
}

class AuthRestartTest : public ::testing::TestWithParam<ServerKind> {};

TEST_P(AuthRestartTest, SurvivesKillAndRestart) {
  auto c = ServerCluster::Start({.kind = GetParam(), .extra_args = AuthArgs()});
  ASSERT_TRUE(c.ok()) << c.status();
  ServerCluster& cluster = **c;
  ASSERT_EQ(Ctl(cluster, {"user", "add", "root:rootpw"}).exit_code, 0);
  ASSERT_EQ(Ctl(cluster, {"role", "add", "ro"}).exit_code, 0);
  ASSERT_EQ(Ctl(cluster, {"role", "grant-permission", "ro", "read", "p/", "--prefix"}).exit_code,
            0);
  ASSERT_EQ(Ctl(cluster, {"user", "add", "carol:cpw"}).exit_code, 0);
  ASSERT_EQ(Ctl(cluster, {"user", "grant-role", "carol", "ro"}).exit_code, 0);
  ASSERT_EQ(Ctl(cluster, {"auth", "enable"}).exit_code, 0);
  cluster.Kill(0);
  ASSERT_TRUE(cluster.Restart(0).ok());
  EXPECT_EQ(Ctl(cluster, {"get", "p/x"}).error, "Error: etcdserver: user name is empty");
  EXPECT_EQ(Ctl(cluster, {"--user", "root:rootpw", "user", "list"}).out, "carol\nroot\n");
  EXPECT_EQ(Ctl(cluster, {"--user", "carol:cpw", "get", "p/x"}).exit_code, 0);
  EXPECT_EQ(Ctl(cluster, {"--user", "carol:cpw", "put", "p/x", "v"}).error,
            "Error: etcdserver: permission denied");
  EXPECT_EQ(Ctl(cluster, {"--user", "carol:bad", "get", "p/x"}).error,
            "Error: etcdserver: authentication failed, invalid user ID or password");
}

INSTANTIATE_TEST_SUITE_P(Servers, AuthRestartTest, ::testing::ValuesIn(TestedServerKinds()),
                         [](const auto& info) { return ServerKindName(info.param); });

}  // namespace
}  // namespace cairn::testing
