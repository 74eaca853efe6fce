// The v3lock and v3election services over real gRPC, the same scenarios against etcd and cairn:
// etcd's errors (code and message) for an unknown lease and the election's misuses; a Lock
// canceled while it waits leaves no key; 200 concurrent waiters on one name are granted one at a
// time in FIFO (create revision) order, and cairn serves them without a thread per call; Observe
// follows proclaims and leader changes.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/harness/cluster_ops.h"
#include "tests/harness/server_process.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace cairn::testing {
namespace {

constexpr auto kWait = std::chrono::seconds(30);

std::unique_ptr<grpc::ClientContext> Ctx(int seconds = 20) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

// The prefix's end for a Range over "prefix*".
std::string PrefixEnd(std::string p) {
  p.back() = static_cast<char>(p.back() + 1);
  return p;
}

// The "Threads:" line of /proc/<pid>/status.
int ThreadCount(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

class LockElectionTest : public ::testing::TestWithParam<ServerKind> {
 protected:
  void SetUp() override {
    auto c = ServerCluster::Start(ClusterOptions{GetParam()});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    channel_ = MakeTestChannel(cluster_->ClientEndpoint(0));
    kv_ = etcdserverpb::KV::NewStub(channel_);
    lease_ = etcdserverpb::Lease::NewStub(channel_);
    lock_ = v3lockpb::Lock::NewStub(channel_);
    election_ = v3electionpb::Election::NewStub(channel_);
  }

  int64_t Grant(int64_t ttl = 60) {
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::Status s = lease_->LeaseGrant(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.id();
  }

  // The keys under `prefix` in create-revision order.
  std::vector<std::string> Keys(const std::string& prefix) {
    etcdserverpb::RangeRequest req;
    req.set_key(prefix);
    req.set_range_end(PrefixEnd(prefix));
    req.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    req.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
    req.set_keys_only(true);
    etcdserverpb::RangeResponse resp;
    grpc::Status s = kv_->Range(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> out;
    for (const auto& kv : resp.kvs()) out.push_back(kv.key());
    return out;
  }

  std::unique_ptr<ServerCluster> cluster_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<v3lockpb::Lock::Stub> lock_;
  std::unique_ptr<v3electionpb::Election::Stub> election_;
};

TEST_P(LockElectionTest, LockAndUnlock) {
  int64_t lease = Grant();
  v3lockpb::LockRequest req;
  req.set_name("lk");
  req.set_lease(lease);
  v3lockpb::LockResponse resp;
  ASSERT_TRUE(lock_->Lock(Ctx().get(), req, &resp).ok());
  char hex[32];
  snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(lease));
  EXPECT_EQ(resp.key(), std::string("lk/") + hex);
  EXPECT_GT(resp.header().revision(), 0);
  EXPECT_EQ(Keys("lk/"), std::vector<std::string>{resp.key()});
  // The same lease again: the same key, held at once (etcd's Mutex finds its own key).
  v3lockpb::LockResponse again;
  ASSERT_TRUE(lock_->Lock(Ctx().get(), req, &again).ok());
  EXPECT_EQ(again.key(), resp.key());
  v3lockpb::UnlockRequest unlock;
  unlock.set_key(resp.key());
  v3lockpb::UnlockResponse unlock_resp;
  ASSERT_TRUE(lock_->Unlock(Ctx().get(), unlock, &unlock_resp).ok());
  EXPECT_GT(unlock_resp.header().revision(), resp.header().revision());
  EXPECT_TRUE(Keys("lk/").empty());
}

TEST_P(LockElectionTest, LockWithUnknownLeaseFailsAsEtcd) {
  v3lockpb::LockRequest req;
  req.set_name("lk");
  req.set_lease(0x1234567);
  v3lockpb::LockResponse resp;
  grpc::Status s = lock_->Lock(Ctx().get(), req, &resp);
  // etcd's lock server passes its embedded client's error on as a plain error: code Unknown.
  EXPECT_EQ(s.error_code(), grpc::UNKNOWN) << s.error_message();
  EXPECT_EQ(s.error_message(), "etcdserver: requested lease not found");
  EXPECT_TRUE(Keys("lk/").empty());
}

TEST_P(LockElectionTest, ElectionErrorsAsEtcd) {
  v3electionpb::LeaderRequest leader;
  leader.set_name("none");
  v3electionpb::LeaderResponse leader_resp;
  grpc::Status s = election_->Leader(Ctx().get(), leader, &leader_resp);
  EXPECT_EQ(s.error_code(), grpc::UNKNOWN) << s.error_message();
  EXPECT_EQ(s.error_message(), "election: no leader");

  int64_t lease = Grant();
  v3electionpb::ProclaimRequest proclaim;
  proclaim.mutable_leader()->set_name("none");
  proclaim.mutable_leader()->set_key("none/1");
  proclaim.mutable_leader()->set_rev(1);
  proclaim.mutable_leader()->set_lease(lease);
  proclaim.set_value("v");
  v3electionpb::ProclaimResponse proclaim_resp;
  s = election_->Proclaim(Ctx().get(), proclaim, &proclaim_resp);
  EXPECT_EQ(s.error_code(), grpc::UNKNOWN) << s.error_message();
  EXPECT_EQ(s.error_message(), "election: not leader");

  v3electionpb::ProclaimRequest no_leader;
  no_leader.set_value("v");
  s = election_->Proclaim(Ctx().get(), no_leader, &proclaim_resp);
  EXPECT_EQ(s.error_code(), grpc::UNKNOWN) << s.error_message();
  EXPECT_EQ(s.error_message(), "\"leader\" field must be provided");

  v3electionpb::ResignRequest resign;
  v3electionpb::ResignResponse resign_resp;
  s = election_->Resign(Ctx().get(), resign, &resign_resp);
  EXPECT_EQ(s.error_code(), grpc::UNKNOWN) << s.error_message();
  EXPECT_EQ(s.error_message(), "\"leader\" field must be provided");
}

TEST_P(LockElectionTest, CampaignProclaimObserveResign) {
  int64_t first = Grant();
  int64_t second = Grant();
  v3electionpb::CampaignRequest c1;
  c1.set_name("el");
  c1.set_lease(first);
  c1.set_value("a");
  v3electionpb::CampaignResponse r1;
  ASSERT_TRUE(election_->Campaign(Ctx().get(), c1, &r1).ok());
  EXPECT_EQ(r1.leader().name(), "el");
  EXPECT_EQ(r1.leader().lease(), first);
  EXPECT_GT(r1.leader().rev(), 0);

  auto observe_ctx = Ctx(60);
  v3electionpb::LeaderRequest leader;
  leader.set_name("el");
  auto observe = election_->Observe(observe_ctx.get(), leader);
  v3electionpb::LeaderResponse seen;
  ASSERT_TRUE(observe->Read(&seen));
  EXPECT_EQ(seen.kv().value(), "a");
  EXPECT_EQ(seen.kv().key(), r1.leader().key());

  // A second candidate waits behind the first.
  v3electionpb::CampaignRequest c2;
  c2.set_name("el");
  c2.set_lease(second);
  c2.set_value("b");
  v3electionpb::CampaignResponse r2;
  grpc::ClientContext c2_ctx;
  c2_ctx.set_deadline(std::chrono::system_clock::now() + kWait);
  absl::Mutex mu;
  bool c2_done = false;
  grpc::Status c2_status;
  election_->async()->Campaign(&c2_ctx, &c2, &r2, [&](grpc::Status s) {
    absl::MutexLock l(&mu);
    c2_status = s;
    c2_done = true;
  });
  ASSERT_TRUE(PollUntil([&] { return Keys("el/").size() == 2; }, kWait));

  v3electionpb::ProclaimRequest proclaim;
  *proclaim.mutable_leader() = r1.leader();
  proclaim.set_value("a2");
  v3electionpb::ProclaimResponse proclaim_resp;
  ASSERT_TRUE(election_->Proclaim(Ctx().get(), proclaim, &proclaim_resp).ok());
  ASSERT_TRUE(observe->Read(&seen));
  EXPECT_EQ(seen.kv().value(), "a2");
  EXPECT_EQ(seen.header().revision(), proclaim_resp.header().revision());
  {
    absl::MutexLock l(&mu);
    EXPECT_FALSE(c2_done);
  }

  v3electionpb::ResignRequest resign;
  *resign.mutable_leader() = r1.leader();
  v3electionpb::ResignResponse resign_resp;
  ASSERT_TRUE(election_->Resign(Ctx().get(), resign, &resign_resp).ok());
  {
    absl::MutexLock l(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&c2_done), absl::Seconds(30)));
    EXPECT_TRUE(c2_status.ok()) << c2_status.error_message();
  }
  EXPECT_EQ(r2.leader().lease(), second);
  ASSERT_TRUE(observe->Read(&seen));
  EXPECT_EQ(seen.kv().value(), "b");
  EXPECT_EQ(seen.kv().key(), r2.leader().key());

  v3electionpb::LeaderResponse now;
  ASSERT_TRUE(election_->Leader(Ctx().get(), leader, &now).ok());
  EXPECT_EQ(now.kv().value(), "b");
  observe_ctx->TryCancel();
  (void)observe->Finish();
}

TEST_P(LockElectionTest, CanceledLockLeavesNoKey) {
  int64_t holder = Grant();
  int64_t waiter = Grant();
  v3lockpb::LockRequest req;
  req.set_name("cl");
  req.set_lease(holder);
  v3lockpb::LockResponse held;
  ASSERT_TRUE(lock_->Lock(Ctx().get(), req, &held).ok());

  req.set_lease(waiter);
  v3lockpb::LockResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kWait);
  absl::Mutex mu;
  bool done = false;
  grpc::Status status;
  lock_->async()->Lock(&ctx, &req, &resp, [&](grpc::Status s) {
    absl::MutexLock l(&mu);
    status = s;
    done = true;
  });
  ASSERT_TRUE(PollUntil([&] { return Keys("cl/").size() == 2; }, kWait));
  ctx.TryCancel();
  {
    absl::MutexLock l(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(30)));
    EXPECT_EQ(status.error_code(), grpc::CANCELLED);
  }
  // The waiter's key goes; the holder's stays.
  EXPECT_TRUE(PollUntil([&] { return Keys("cl/") == std::vector<std::string>{held.key()}; }, kWait))
      << Keys("cl/").size();
}

TEST_P(LockElectionTest, ManyWaitersAreGrantedInFifoOrder) {
  constexpr int kWaiters = 200;
  int64_t holder = Grant();
  v3lockpb::LockRequest hold;
  hold.set_name("fifo");
  hold.set_lease(holder);
  v3lockpb::LockResponse held;
  ASSERT_TRUE(lock_->Lock(Ctx().get(), hold, &held).ok());
  const int threads_before = GetParam() == ServerKind::kCairn ? ThreadCount(cluster_->Pid(0)) : 0;

  struct Waiter {
    v3lockpb::LockRequest req;
    v3lockpb::LockResponse resp;
    grpc::ClientContext ctx;
  };
  std::vector<std::unique_ptr<Waiter>> waiters;
  absl::Mutex mu;
  std::vector<int> granted;  // indexes, in grant order
  std::vector<grpc::Status> failures;
  for (int i = 0; i < kWaiters; ++i) {
    auto w = std::make_unique<Waiter>();
    w->req.set_name("fifo");
    w->req.set_lease(Grant(600));
    w->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    lock_->async()->Lock(&w->ctx, &w->req, &w->resp, [&, i](grpc::Status s) {
      absl::MutexLock l(&mu);
      if (s.ok()) {
        granted.push_back(i);
      } else {
        failures.push_back(s);
      }
    });
    waiters.push_back(std::move(w));
  }
  ASSERT_TRUE(
      PollUntil([&] { return Keys("fifo/").size() == kWaiters + 1; }, std::chrono::seconds(60)));
  if (GetParam() == ServerKind::kCairn) {
    // Every waiter is pending now; none has a thread of its own.
    int threads_waiting = ThreadCount(cluster_->Pid(0));
    EXPECT_LT(threads_waiting - threads_before, kWaiters / 4)
        << threads_before << " -> " << threads_waiting;
  }
  // The expected order: the waiters' keys by create revision.
  std::vector<std::string> order = Keys("fifo/");
  ASSERT_EQ(order.front(), held.key());
  order.erase(order.begin());

  std::string owner = held.key();
  for (int n = 0; n < kWaiters; ++n) {
    v3lockpb::UnlockRequest unlock;
    unlock.set_key(owner);
    v3lockpb::UnlockResponse unlock_resp;
    ASSERT_TRUE(lock_->Unlock(Ctx().get(), unlock, &unlock_resp).ok());
    absl::MutexLock l(&mu);
    auto next_granted = [&] { return static_cast<int>(granted.size()) > n || !failures.empty(); };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&next_granted), absl::Seconds(30))) << n;
    ASSERT_TRUE(failures.empty()) << failures[0].error_message();
    // Exactly one more holder: the next in line.
    ASSERT_EQ(static_cast<int>(granted.size()), n + 1);
    owner = waiters[granted[n]]->resp.key();
    ASSERT_EQ(owner, order[n]) << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Servers, LockElectionTest, ::testing::ValuesIn(TestedServerKinds()),
                         [](const auto& info) { return ServerKindName(info.param); });

}  // namespace
}  // namespace cairn::testing
