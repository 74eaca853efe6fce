// The async forms of the waiting recipe calls (async.h): they complete when the blocking call
// would return, a cancel (of the future or of the call's token) or a deadline ends them with the
// blocking call's cleanup, and RunAsync wraps any other call.
#include <gtest/gtest.h>

#include "cairn/recipes/async.h"
#include "cairn/recipes/barrier.h"
#include "cairn/recipes/counter.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/queue.h"
#include "cairn/recipes/semaphore.h"
#include "cairn/recipes/stm.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

class AsyncTest : public RecipeTest {};

TEST_P(AsyncTest, LockAsyncCompletesOnHandOffAndCancelRemovesTheWaiter) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  auto s3 = NewSession();
  ASSERT_TRUE(s1 && s2 && s3);
  recipes::Mutex holder(s1, "async/lock");
  auto held = holder.LockAsync(Within(20000)).Get();
  ASSERT_TRUE(held.ok()) << held.status();

  recipes::Mutex waiter(s2, "async/lock");
  Future<recipes::Grant> f = waiter.LockAsync(Within(30000));
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/lock/").size() == 2; }));
  EXPECT_FALSE(f.Ready());

  // A third waiter gives up through the future: its key goes, the queue goes on.
  recipes::Mutex quitter(s3, "async/lock");
  Future<recipes::Grant> q = quitter.LockAsync(Within(30000));
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/lock/").size() == 3; }));
  q.Cancel();
  EXPECT_EQ(q.Get().status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(PollUntil([&] { return KeysUnder("async/lock/").size() == 2; }));

  ASSERT_TRUE(holder.Unlock().ok());
  auto got = f.Get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_GT(got->fencing_token, held->fencing_token);
  ASSERT_TRUE(waiter.Unlock().ok());
}

TEST_P(AsyncTest, DeadlineAndTokenEndAsyncWaits) {
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_TRUE(s1 && s2);
  recipes::Semaphore a(s1, "async/sem", 1);
  ASSERT_TRUE(a.Acquire(Within(20000)).ok());
  recipes::Semaphore b(s2, "async/sem", 1);
  EXPECT_EQ(b.AcquireAsync(Within(300)).Get().status().code(), absl::StatusCode::kDeadlineExceeded);
  CallOptions call = Within(30000);
  call.cancel = CancelToken::Make();
  Future<recipes::Grant> f = b.AcquireAsync(call);
  call.cancel.Cancel();
  EXPECT_EQ(f.Get().status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(PollUntil([&] { return KeysUnder("async/sem/").size() == 1; }));

  // Already canceled: completes at once, nothing created.
  Future<recipes::Grant> late = b.AcquireAsync(call);
  EXPECT_EQ(late.Get().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(KeysUnder("async/sem/").size(), 1u);
}

TEST_P(AsyncTest, CampaignDequeueBarrierStmAndRunAsync) {
  auto s1 = NewSession();
  ASSERT_TRUE(s1);
  recipes::Election e(s1, "async/elect");
  auto g = e.CampaignAsync("me", Within(20000)).Get();
  ASSERT_TRUE(g.ok()) << g.status();
  auto leader = e.Leader();
  ASSERT_TRUE(leader.ok());
  EXPECT_EQ(leader->value, "me");

  recipes::Queue queue(*client_, "async/q");
  Future<recipes::QueueItem> item = queue.DequeueAsync(Within(30000));
  ASSERT_TRUE(queue.Enqueue("job").ok());
  auto taken = item.Get();
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->value, "job");

  recipes::Barrier barrier(*client_, "async/barrier");
  ASSERT_TRUE(barrier.Hold().ok());
  Future<recipes::Completed> passed = barrier.WaitAsync(Within(30000));
  ASSERT_TRUE(barrier.Release().ok());
  EXPECT_TRUE(passed.Get().ok());

  auto txn = recipes::RunStmAsync(client_->kv(), [](recipes::Stm& stm) {
               stm.Put("async/stm", "v");
               return absl::OkStatus();
             }).Get();
  EXPECT_TRUE(txn.ok()) << txn.status();

  recipes::Counter counter(*client_, "async/count");
  auto added = recipes::RunAsync<int64_t>(Within(20000), [&](const CallOptions& c) {
                 return counter.Add(5, c);
               }).Get();
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(*added, 5);
  EXPECT_TRUE(
      recipes::RunAsync(Within(20000), [&](const CallOptions& c) { return counter.Set(7, c); })
          .Get()
          .ok());
  EXPECT_EQ(*counter.Get(), 7);
}

INSTANTIATE_TEST_SUITE_P(Servers, AsyncTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
