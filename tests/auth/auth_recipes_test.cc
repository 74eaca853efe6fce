// v3lock and v3election under auth, against etcd 3.4 and cairn: the same calls by callers with
// and without the key permissions (read-write on the lock/election prefix, read-only, none, no
// token, a garbage token) get the same answers (etcd runs these services as the caller over KV).
// And etcdctl's `lock` (a client-side mutex over KV) with --user, the same way.
#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/auth/auth_api.h"
#include "tests/harness/server_process.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace cairn::testing {
namespace {

struct Scenario {
  std::vector<Answer> answers;
  std::vector<std::string> etcdctl;  // exit code and output of each etcdctl run
};

Scenario RunScenario(ServerKind kind) {
  Scenario out;
  auto c = ServerCluster::Start({.kind = kind, .extra_args = {"--bcrypt-cost", "4"}});
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return out;
  std::string endpoint = (*c)->ClientEndpoint(0);
  Api api(endpoint);
  auto channel = MakeTestChannel(endpoint);
  auto lock = v3lockpb::Lock::NewStub(channel);
  auto election = v3electionpb::Election::NewStub(channel);
  AddRole(api, "root", "", authpb::Permission::READ);
  AddRole(api, "lk", "locks/", authpb::Permission::READWRITE);
  AddRole(api, "ro", "locks/", authpb::Permission::READ);
  AddUser(api, "", "root", "rootpw", "root");
  AddUser(api, "", "locker", "lpw", "lk");
  AddUser(api, "", "reader", "rpw", "ro");
  AddUser(api, "", "nobody", "npw", "");
  LeaseGrantRequest grant;
  grant.set_ttl(120);
  LeaseGrantResponse lease;
  MustOk(api.Call("", [&](auto* ctx) { return api.lease->LeaseGrant(ctx, grant, &lease); }),
         "lease");
  AuthEnableRequest enable;
  AuthEnableResponse enable_resp;
  MustOk(api.Call("", [&](auto* ctx) { return api.auth->AuthEnable(ctx, enable, &enable_resp); }),
         "enable");
  const std::string locker = api.Token("locker", "lpw");
  const std::vector<std::string> callers = {api.Token("reader", "rpw"), api.Token("nobody", "npw"),
                                            "", "garbage.1"};
  auto record = [&](const Answer& a) { out.answers.push_back(a); };

  // The permitted paths first: lock/unlock, campaign/leader/proclaim/resign, all as `locker`.
  v3lockpb::LockRequest lreq;
  lreq.set_name("locks/a");
  lreq.set_lease(lease.id());
  v3lockpb::LockResponse lresp;
  record(api.Call(locker, [&](auto* ctx) { return lock->Lock(ctx, lreq, &lresp); }));
  v3lockpb::UnlockRequest ureq;
  ureq.set_key(lresp.key());
  v3lockpb::UnlockResponse uresp;
  v3electionpb::CampaignRequest creq;
  creq.set_name("locks/e");
  creq.set_lease(lease.id());
  creq.set_value("v1");
  v3electionpb::CampaignResponse cresp;
  record(api.Call(locker, [&](auto* ctx) { return election->Campaign(ctx, creq, &cresp); }));
  v3electionpb::LeaderRequest leq;
  leq.set_name("locks/e");
  v3electionpb::LeaderResponse leresp;
  v3electionpb::ProclaimRequest preq;
  *preq.mutable_leader() = cresp.leader();
  preq.set_value("v2");
  v3electionpb::ProclaimResponse presp;
  v3electionpb::ResignRequest rreq;
  *rreq.mutable_leader() = cresp.leader();
  v3electionpb::ResignResponse rresp;
  // Every other caller: each call refused (or, for the reader, the reads allowed).
  for (const std::string& token : callers) {
    record(api.Call(token, [&](auto* ctx) { return lock->Lock(ctx, lreq, &lresp); }));
    record(api.Call(token, [&](auto* ctx) { return lock->Unlock(ctx, ureq, &uresp); }));
    record(api.Call(token, [&](auto* ctx) { return election->Campaign(ctx, creq, &cresp); }));
    record(api.Call(token, [&](auto* ctx) { return election->Leader(ctx, leq, &leresp); }));
    record(api.Call(token, [&](auto* ctx) { return election->Proclaim(ctx, preq, &presp); }));
    record(api.Call(token, [&](auto* ctx) { return election->Resign(ctx, rreq, &rresp); }));
    record(api.Call(token, [&](auto* ctx) {
      auto stream = election->Observe(ctx, leq);
      v3electionpb::LeaderResponse first;
      if (stream->Read(&first)) ctx->TryCancel();
      return stream->Finish();
    }));
  }
  // The permitted paths end: the election's value changed by `locker` only.
  record(api.Call(locker, [&](auto* ctx) { return election->Leader(ctx, leq, &leresp); }));
  out.answers.back().message = leresp.kv().value();  // "v1": no refused Proclaim went through
  record(api.Call(locker, [&](auto* ctx) { return election->Proclaim(ctx, preq, &presp); }));
  record(api.Call(locker, [&](auto* ctx) { return election->Resign(ctx, rreq, &rresp); }));
  record(api.Call(locker, [&](auto* ctx) { return lock->Unlock(ctx, ureq, &uresp); }));
  // A lock outside the caller's prefix.
  lreq.set_name("other/a");
  record(api.Call(locker, [&](auto* ctx) { return lock->Lock(ctx, lreq, &lresp); }));

  for (const char* user : {"locker:lpw", "reader:rpw"}) {
    CommandResult r =
        RunCommand({EtcdctlPath(), "--endpoints", endpoint, "--user", user, "--dial-timeout", "5s",
                    "--command-timeout", "10s", "lock", "locks/ctl", "echo", "held"});
    // The exit code and the last line (etcdctl's warnings before it carry times and ids).
    std::string text = r.out + r.err;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    out.etcdctl.push_back(absl::StrCat(r.exit_code, " ", text.substr(text.rfind('\n') + 1)));
  }
  return out;
}

TEST(AuthRecipesTest, LockAndElectionMatchEtcd) {
  Scenario etcd = RunScenario(ServerKind::kEtcd);
  if (::testing::Test::HasFailure()) return;
  Scenario cairn = RunScenario(ServerKind::kCairn);
  ASSERT_EQ(cairn.answers.size(), etcd.answers.size());
  for (size_t i = 0; i < etcd.answers.size(); ++i) {
    EXPECT_EQ(cairn.answers[i], etcd.answers[i]) << "call #" << i;
  }
  EXPECT_EQ(cairn.etcdctl, etcd.etcdctl);
  // The scenario is what it says: the permitted calls passed, the others were refused.
  EXPECT_EQ(etcd.answers[0], Answer{});  // Lock by locker
  EXPECT_EQ(etcd.answers[1], Answer{});  // Campaign by locker
  int refused = 0;
  for (const Answer& a : etcd.answers) refused += a.code != 0;
  EXPECT_GE(refused, 20);
  EXPECT_EQ(etcd.answers[etcd.answers.size() - 5].message, "v1");
  ASSERT_EQ(etcd.etcdctl.size(), 2u);
  EXPECT_EQ(etcd.etcdctl[0], "0 held");
  EXPECT_EQ(etcd.etcdctl[1], "1 Error: etcdserver: permission denied");
}

}  // namespace
}  // namespace cairn::testing
