// A held lock across the loss of the cluster leader (3 members): the holder's session survives
// the election, its guard keeps working, the waiter keeps waiting, and it gets the lock once the
// holder unlocks. cairn runs through the public test kit (cairn::testing::TestingCluster), etcd
// through the internal harness.
#include <thread>

#include <gtest/gtest.h>

#include "cairn/recipes/mutex.h"
#include "tests/recipes/fault_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Grant;
using recipes::Mutex;

class FailoverTest : public ::testing::TestWithParam<ServerKind> {};

TEST_P(FailoverTest, LockSurvivesLeaderLoss) {
  auto cluster = AnyCluster::Start(GetParam(), 3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  std::unique_ptr<Client> client = (*cluster)->Connect();
  ASSERT_NE(client, nullptr);
  recipes::SessionOptions so;
  so.ttl_seconds = 5;
  auto s0 = recipes::Session::Create(*client, so);
  auto s1 = recipes::Session::Create(*client, so);
  ASSERT_TRUE(s0.ok() && s1.ok());
  Mutex holder(*s0, "failover/lock");
  Mutex waiter(*s1, "failover/lock");
  auto hg = holder.Lock(Within(20000));
  ASSERT_TRUE(hg.ok()) << hg.status();
  absl::StatusOr<Grant> wg;
  std::thread t([&] { wg = waiter.Lock(Within(90000)); });
  auto count = [&] {
    GetOptions go;
    go.prefix = true;
    go.count_only = true;
    auto r = client->kv().Get("failover/lock/", go);
    return r.ok() ? r->count : -1;
  };
  ASSERT_TRUE(PollUntil([&] { return count() == 2; }));

  auto leader = (*cluster)->Leader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  (*cluster)->Kill(*leader);
  auto next = (*cluster)->Leader({*leader});
  ASSERT_TRUE(next.ok()) << next.status();

  // Still the holder: the guarded write applies, the waiter still waits.
  Txn txn;
  txn.If({hg->Guard()}).Then({Op::Put("failover/fenced", "holder")});
  auto r = client->kv().Commit(txn, Within(20000));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);
  EXPECT_TRUE((*s0)->alive()) << (*s0)->status();
  EXPECT_EQ(count(), 2);

  ASSERT_TRUE(holder.Unlock(Within(20000)).ok());
  t.join();
  ASSERT_TRUE(wg.ok()) << wg.status();
  EXPECT_GT(wg->fencing_token, hg->fencing_token);
}

INSTANTIATE_TEST_SUITE_P(Servers, FailoverTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
