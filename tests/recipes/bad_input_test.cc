// Bad input for every session-bound recipe, beside the per-recipe checks in the other files: an
// empty name, a negative permit or participant count, and use after the session was closed (or
// lost). Each is a clear error at once (INVALID_ARGUMENT / FAILED_PRECONDITION / the loss
// status), never a hang (every call carries a deadline far above what an error needs) or a crash.
#include <gtest/gtest.h>

#include "cairn/recipes/barrier.h"
#include "cairn/recipes/discovery.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/leader_latch.h"
#include "cairn/recipes/leader_selector.h"
#include "cairn/recipes/multi_lock.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/queue.h"
#include "cairn/recipes/rw_mutex.h"
#include "cairn/recipes/semaphore.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using absl::StatusCode;
using namespace cairn::recipes;  // NOLINT: every recipe is under test here

class BadInputTest : public RecipeTest {};

TEST_P(BadInputTest, EmptyNamesAndNegativeCounts) {
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  RWMutex rw(s, "");
  EXPECT_EQ(rw.RLock(Within(5000)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(rw.TryLock(Within(5000)).status().code(), StatusCode::kInvalidArgument);
  Semaphore unnamed(s, "", 2);
  EXPECT_EQ(unnamed.TryAcquire(Within(5000)).status().code(), StatusCode::kInvalidArgument);
  Semaphore negative(s, "bad/sem", -1);
  EXPECT_EQ(negative.Acquire(Within(5000)).status().code(), StatusCode::kInvalidArgument);
  Semaphore zero(s, "bad/sem", 0);
  EXPECT_EQ(zero.TryAcquire(Within(5000)).status().code(), StatusCode::kInvalidArgument);
  DoubleBarrier unnamed_barrier(s, "", 2);
  EXPECT_EQ(unnamed_barrier.Enter(Within(5000)).code(), StatusCode::kInvalidArgument);
  DoubleBarrier negative_barrier(s, "bad/dbarrier", -3);
  EXPECT_EQ(negative_barrier.Enter(Within(5000)).code(), StatusCode::kInvalidArgument);
  MultiLock none(s, {});
  EXPECT_EQ(none.Lock(Within(5000)).status().code(), StatusCode::kInvalidArgument);
  MultiLock one_empty(s, {"bad/a", ""});
  EXPECT_EQ(one_empty.Lock(Within(5000)).status().code(), StatusCode::kInvalidArgument);
  Barrier barrier(*client_, "");
  EXPECT_EQ(barrier.Wait(Within(5000)).code(), StatusCode::kInvalidArgument);
  LeaderSelectorOptions so;
  so.take_leadership = [](const Grant&, const CancelToken&) {};
  EXPECT_EQ(LeaderSelector::Start(s, "", so).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LeaderSelector::Start(s, "bad/selector", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(GetLeader(client_->kv(), "", Within(5000)).status().code(),
            StatusCode::kInvalidArgument);
  // Nothing was left behind by the refused calls.
  EXPECT_TRUE(KeysUnder("bad/").empty());
}

TEST_P(BadInputTest, UseAfterTheSessionWasClosed) {
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Close().ok());
  EXPECT_TRUE(s->Close().ok());  // idempotent
  Mutex mu(s, "closed/mu");
  EXPECT_EQ(mu.Lock(Within(5000)).status().code(), StatusCode::kFailedPrecondition);
  RWMutex rw(s, "closed/rw");
  EXPECT_EQ(rw.RLock(Within(5000)).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(rw.Lock(Within(5000)).status().code(), StatusCode::kFailedPrecondition);
  Semaphore sem(s, "closed/sem", 2);
  EXPECT_EQ(sem.Acquire(Within(5000)).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(sem.TryAcquire(Within(5000)).status().code(), StatusCode::kFailedPrecondition);
  MultiLock multi(s, {"closed/a", "closed/b"});
  EXPECT_EQ(multi.Lock(Within(5000)).status().code(), StatusCode::kFailedPrecondition);
  DoubleBarrier dbarrier(s, "closed/dbarrier", 2);
  EXPECT_EQ(dbarrier.Enter(Within(5000)).code(), StatusCode::kFailedPrecondition);
  Election election(s, "closed/election");
  EXPECT_EQ(election.Campaign("v", Within(5000)).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(LeaderLatch::Start(s, "closed/latch").status().code(), StatusCode::kFailedPrecondition);
  LeaderSelectorOptions so;
  so.take_leadership = [](const Grant&, const CancelToken&) {};
  EXPECT_EQ(LeaderSelector::Start(s, "closed/selector", so).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_FALSE(RegisterEndpoint(*s, "closed/svc", {"10.0.0.1:80", ""}, Within(5000)).ok());
  Queue queue(*client_, "closed/queue");
  ASSERT_TRUE(queue.Enqueue("item").ok());
  EXPECT_FALSE(queue.Claim(*s, Within(5000)).ok());
  EXPECT_EQ(*queue.Size(Within(5000)), 1);  // the failed claim took nothing
  EXPECT_TRUE(KeysUnder("closed/").size() == 1);
}

TEST_P(BadInputTest, UseAfterTheSessionWasLost) {
  auto s = NewSession(/*ttl=*/2);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(client_->lease().Revoke(s->lease(), Within(10000)).ok());
  ASSERT_TRUE(PollUntil([&] { return !s->alive(); }));
  Mutex mu(s, "lost/mu");
  EXPECT_FALSE(mu.Lock(Within(5000)).ok());
  Semaphore sem(s, "lost/sem", 1);
  EXPECT_FALSE(sem.Acquire(Within(5000)).ok());
  Election election(s, "lost/election");
  EXPECT_FALSE(election.Campaign("v", Within(5000)).ok());
  EXPECT_FALSE(LeaderLatch::Start(s, "lost/latch").ok());
  EXPECT_TRUE(KeysUnder("lost/").empty());
}

INSTANTIATE_TEST_SUITE_P(Servers, BadInputTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
