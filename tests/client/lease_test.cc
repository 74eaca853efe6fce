// Lease: grant/revoke/time-to-live/leases, and the managed keepalive: renewal past the TTL,
// loss signal on revoke and when the server is gone, no spurious loss across a restart or the
// loss of one member of three.
#include <atomic>

#include <gtest/gtest.h>

#include "tests/client/client_test_util.h"

namespace cairn::client_test {
namespace {

class LeaseTest : public ClusterTest {
 protected:
  void Start(int members = 1) {
    ASSERT_NO_FATAL_FAILURE(StartCluster(members));
    client_ = Connect();
    ASSERT_NE(client_, nullptr);
  }
  std::unique_ptr<Client> client_;
};

TEST_P(LeaseTest, GrantTimeToLiveLeasesRevoke) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto lease = client_->lease();
  auto g = lease.Grant(60);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_NE(g->id, 0);
  EXPECT_EQ(g->ttl_seconds, 60);
  PutOptions po;
  po.lease = g->id;
  ASSERT_TRUE(client_->kv().Put("leased", "v", po).ok());
  auto ttl = lease.TimeToLive(g->id, /*keys=*/true);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->granted_ttl_seconds, 60);
  EXPECT_GT(ttl->ttl_seconds, 0);
  ASSERT_EQ(ttl->keys.size(), 1u);
  EXPECT_EQ(ttl->keys[0], "leased");
  auto all = lease.Leases();
  ASSERT_TRUE(all.ok());
  EXPECT_NE(std::find(all->ids.begin(), all->ids.end(), g->id), all->ids.end());
  auto once = lease.KeepAliveOnce(g->id);
  ASSERT_TRUE(once.ok()) << once.status();
  EXPECT_EQ(once->ttl_seconds, 60);

  auto dup = lease.Grant(60, g->id);
  EXPECT_EQ(ErrorKindOf(dup.status()), ErrorKind::kLeaseExists) << dup.status();

  ASSERT_TRUE(lease.Revoke(g->id).ok());
  auto gone = client_->kv().Get("leased");
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->kvs.empty());
  ttl = lease.TimeToLive(g->id);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->ttl_seconds, -1);
  auto r = lease.Revoke(g->id);
  EXPECT_EQ(ErrorKindOf(r.status()), ErrorKind::kLeaseNotFound) << r.status();
  once = lease.KeepAliveOnce(g->id);
  EXPECT_EQ(ErrorKindOf(once.status()), ErrorKind::kLeaseNotFound) << once.status();
}

TEST_P(LeaseTest, KeepAliveRenewsPastTtlAndSignalsRevoke) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto g = client_->lease().Grant(3);
  ASSERT_TRUE(g.ok());
  std::atomic<int> renewals{0};
  std::atomic<int> lost_calls{0};
  KeepAliveOptions ko;
  ko.on_renewed = [&](int64_t) { ++renewals; };
  ko.on_lost = [&](const absl::Status&) { ++lost_calls; };
  auto ka = client_->lease().KeepAlive(g->id, ko);
  // Renewed every TTL/3 = 1 s: five renewals take longer than the TTL.
  ASSERT_TRUE(PollUntil([&] { return renewals >= 5; }));
  EXPECT_FALSE(ka->lost());
  EXPECT_EQ(ka->ttl_seconds(), 3);
  auto ttl = client_->lease().TimeToLive(g->id);
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->ttl_seconds, 0);

  ASSERT_TRUE(client_->lease().Revoke(g->id).ok());
  absl::Status st = ka->WaitLost(In(std::chrono::milliseconds(20000)));
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kLeaseNotFound) << st;
  EXPECT_EQ(lost_calls.load(), 1);
}

TEST_P(LeaseTest, LossSignaledWhenServerIsGone) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto g = client_->lease().Grant(3);
  ASSERT_TRUE(g.ok());
  std::atomic<int> renewals{0};
  KeepAliveOptions ko;
  ko.on_renewed = [&](int64_t) { ++renewals; };
  auto ka = client_->lease().KeepAlive(g->id, ko);
  ASSERT_TRUE(PollUntil([&] { return renewals >= 1; }));
  cluster_->Kill(0);
  absl::Status st = ka->WaitLost(In(std::chrono::milliseconds(20000)));
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kLeaseLost) << st;
}

TEST_P(LeaseTest, NoSpuriousLossAcrossRestart) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto g = client_->lease().Grant(10);
  ASSERT_TRUE(g.ok());
  std::atomic<int> renewals{0};
  KeepAliveOptions ko;
  ko.on_renewed = [&](int64_t) { ++renewals; };
  auto ka = client_->lease().KeepAlive(g->id, ko);
  ASSERT_TRUE(PollUntil([&] { return renewals >= 1; }));
  cluster_->Kill(0);
  {
    absl::Status restarted = cluster_->Restart(0);
    ASSERT_TRUE(restarted.ok()) << restarted;
  }
  int before = renewals.load();
  ASSERT_TRUE(PollUntil([&] { return renewals >= before + 2; }, std::chrono::milliseconds(30000)));
  EXPECT_FALSE(ka->lost()) << ka->status();
  auto ttl = client_->lease().TimeToLive(g->id);
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->ttl_seconds, 0);
}

// Multi-member: etcd only until cairn runs clusters.
class LeaseMembersTest : public LeaseTest {};

TEST_P(LeaseMembersTest, NoSpuriousLossWhenOneOfThreeMembersDies) {
  ASSERT_NO_FATAL_FAILURE(Start(3));
  auto g = client_->lease().Grant(6);
  ASSERT_TRUE(g.ok());
  std::atomic<int> renewals{0};
  KeepAliveOptions ko;
  ko.on_renewed = [&](int64_t) { ++renewals; };
  auto ka = client_->lease().KeepAlive(g->id, ko);
  ASSERT_TRUE(PollUntil([&] { return renewals >= 1; }));
  std::string current = client_->current_endpoint();
  for (int i = 0; i < cluster_->size(); ++i) {
    if (cluster_->ClientEndpoint(i) == current) cluster_->Kill(i);
  }
  int before = renewals.load();
  // Renewals continue through another member, past the lease's TTL.
  ASSERT_TRUE(PollUntil([&] { return renewals >= before + 8; }, std::chrono::milliseconds(40000)));
  EXPECT_FALSE(ka->lost()) << ka->status();
}

INSTANTIATE_TEST_SUITE_P(Servers, LeaseTest, ::testing::ValuesIn(CairnServedKinds()), KindName);
INSTANTIATE_TEST_SUITE_P(Servers, LeaseMembersTest, ::testing::ValuesIn(EtcdOnly()), KindName);

}  // namespace
}  // namespace cairn::client_test
