// Semaphore, RWMutex, Barrier and DoubleBarrier: permits never exceeded and granted in order,
// readers sharing while writers exclude (and a waiting writer not overtaken by a later reader),
// barriers releasing their waiters, bad input.
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/recipes/barrier.h"
#include "cairn/recipes/rw_mutex.h"
#include "cairn/recipes/semaphore.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Barrier;
using recipes::DoubleBarrier;
using recipes::Grant;
using recipes::RWMutex;
using recipes::Semaphore;

class SyncTest : public RecipeTest {};

TEST_P(SyncTest, SemaphoreGrantsAtMostPermitsInArrivalOrder) {
  constexpr int kPermits = 2;
  std::vector<std::shared_ptr<recipes::Session>> sessions;
  std::vector<std::unique_ptr<Semaphore>> sems;
  for (int i = 0; i < 4; ++i) {
    sessions.push_back(NewSession());
    ASSERT_NE(sessions.back(), nullptr);
    sems.push_back(std::make_unique<Semaphore>(sessions.back(), "sem/a", kPermits));
  }
  ASSERT_TRUE(sems[0]->Acquire(Within(20000)).ok());
  auto g1 = sems[1]->TryAcquire(Within(20000));
  ASSERT_TRUE(g1.ok());
  ASSERT_TRUE(g1->has_value());
  auto none = sems[2]->TryAcquire(Within(20000));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(KeysUnder("sem/a/").size(), 2u);

  std::mutex order_mu;
  std::vector<int> order;
  absl::StatusOr<Grant> g2, g3;
  std::thread t2([&] {
    g2 = sems[2]->Acquire(Within(60000));
    std::lock_guard<std::mutex> lock(order_mu);
    order.push_back(2);
  });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("sem/a/").size() == 3; }));
  std::thread t3([&] {
    g3 = sems[3]->Acquire(Within(60000));
    std::lock_guard<std::mutex> lock(order_mu);
    order.push_back(3);
  });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("sem/a/").size() == 4; }));
  {
    std::lock_guard<std::mutex> lock(order_mu);
    EXPECT_TRUE(order.empty());
  }
  ASSERT_TRUE(sems[0]->Release().ok());
  t2.join();
  ASSERT_TRUE(g2.ok()) << g2.status();
  {
    std::lock_guard<std::mutex> lock(order_mu);
    EXPECT_EQ(order, std::vector<int>{2});  // 3 still waits: 1 and 2 hold the permits
  }
  ASSERT_TRUE(sems[1]->Release().ok());
  t3.join();
  ASSERT_TRUE(g3.ok()) << g3.status();
  EXPECT_LT(g2->fencing_token, g3->fencing_token);
  EXPECT_EQ(sems[1]->Release().code(), absl::StatusCode::kFailedPrecondition);

  Semaphore zero(sessions[0], "sem/b", 0);
  EXPECT_EQ(zero.Acquire(Within(5000)).status().code(), absl::StatusCode::kInvalidArgument);
  Semaphore unnamed(sessions[0], "", 1);
  EXPECT_EQ(unnamed.Acquire(Within(5000)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(SyncTest, SemaphorePermitOfALostSessionPassesOn) {
  auto holder_session = NewSession(/*ttl=*/2);
  auto waiter_session = NewSession();
  ASSERT_TRUE(holder_session && waiter_session);
  Semaphore holder(holder_session, "sem/lost", 1);
  Semaphore waiter(waiter_session, "sem/lost", 1);
  auto hg = holder.Acquire(Within(20000));
  ASSERT_TRUE(hg.ok()) << hg.status();
  absl::StatusOr<Grant> wg;
  std::thread t([&] { wg = waiter.Acquire(Within(60000)); });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("sem/lost/").size() == 2; }));
  holder_session->Orphan();  // stops renewing: the lease runs out
  t.join();
  ASSERT_TRUE(wg.ok()) << wg.status();
  Txn stale;
  stale.If({hg->Guard()}).Then({Op::Put("sem/fenced", "old")});
  auto r = client_->kv().Commit(stale);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
}

TEST_P(SyncTest, SemaphoreNeverExceedsPermitsUnderContention) {
  constexpr int kPermits = 2;
  constexpr int kContenders = 5;
  constexpr int kRounds = 5;
  std::vector<std::shared_ptr<recipes::Session>> sessions;
  for (int i = 0; i < kContenders; ++i) {
    sessions.push_back(NewSession());
    ASSERT_NE(sessions.back(), nullptr);
  }
  std::atomic<int> holders{0};
  std::atomic<int> max_holders{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kContenders; ++i) {
    threads.emplace_back([&, i] {
      Semaphore sem(sessions[i], "sem/stress", kPermits);
      for (int r = 0; r < kRounds; ++r) {
        if (!sem.Acquire(Within(60000)).ok()) {
          ++errors;
          continue;
        }
        int now = holders.fetch_add(1) + 1;
        int prev = max_holders.load();
        while (now > prev && !max_holders.compare_exchange_weak(prev, now)) {
        }
        // A round trip while holding, so holders overlap.
        if (!client_->kv().Get("sem/stress/").ok()) ++errors;
        holders.fetch_sub(1);
        if (!sem.Release(Within(10000)).ok()) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_LE(max_holders.load(), kPermits);
  EXPECT_GE(max_holders.load(), 1);
  EXPECT_TRUE(KeysUnder("sem/stress/").empty());
}

TEST_P(SyncTest, RWMutexReadersShareWritersExcludeInOrder) {
  auto sr1 = NewSession();
  auto sr2 = NewSession();
  auto sw = NewSession();
  auto sr3 = NewSession();
  ASSERT_TRUE(sr1 && sr2 && sw && sr3);
  RWMutex r1(sr1, "rw/a");
  RWMutex r2(sr2, "rw/a");
  RWMutex w(sw, "rw/a");
  RWMutex r3(sr3, "rw/a");
  ASSERT_TRUE(r1.RLock(Within(20000)).ok());
  auto r2g = r2.TryRLock(Within(20000));
  ASSERT_TRUE(r2g.ok());
  ASSERT_TRUE(r2g->has_value()) << "readers must share";
  auto wtry = w.TryLock(Within(20000));
  ASSERT_TRUE(wtry.ok());
  EXPECT_FALSE(wtry->has_value());

  std::atomic<bool> writer_in{false};
  std::atomic<bool> late_reader_in{false};
  absl::StatusOr<Grant> wg, r3g;
  std::thread tw([&] {
    wg = w.Lock(Within(60000));
    writer_in = true;
  });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("rw/a/").size() == 3; }));
  std::thread tr([&] {
    r3g = r3.RLock(Within(60000));
    late_reader_in = true;
  });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("rw/a/").size() == 4; }));
  EXPECT_FALSE(writer_in);
  EXPECT_FALSE(late_reader_in) << "a reader overtook a waiting writer";
  ASSERT_TRUE(r1.Unlock().ok());
  ASSERT_TRUE(r2.Unlock().ok());
  tw.join();
  ASSERT_TRUE(wg.ok()) << wg.status();
  EXPECT_FALSE(late_reader_in);
  ASSERT_TRUE(w.Unlock().ok());
  tr.join();
  ASSERT_TRUE(r3g.ok()) << r3g.status();
  EXPECT_GT(r3g->fencing_token, wg->fencing_token);

  RWMutex bad(sr1, "");
  EXPECT_EQ(bad.Lock(Within(5000)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.Unlock().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(SyncTest, BarrierReleasesWaiters) {
  Barrier b(*client_, "barrier/a");
  ASSERT_TRUE(b.Wait(Within(10000)).ok());  // not held: returns at once
  ASSERT_TRUE(b.Hold().ok());
  EXPECT_EQ(b.Hold().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(b.Wait(Within(300)).code(), absl::StatusCode::kDeadlineExceeded);
  std::atomic<int> released{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&] {
      Barrier mine(*client_, "barrier/a");
      if (mine.Wait(Within(60000)).ok()) ++released;
    });
  }
  EXPECT_EQ(released.load(), 0);
  ASSERT_TRUE(b.Release().ok());
  for (auto& t : waiters) t.join();
  EXPECT_EQ(released.load(), 3);
  Barrier bad(*client_, "");
  EXPECT_EQ(bad.Hold().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(SyncTest, DoubleBarrierEntersAndLeavesTogether) {
  constexpr int kCount = 3;
  std::vector<std::shared_ptr<recipes::Session>> sessions;
  for (int i = 0; i < kCount; ++i) {
    sessions.push_back(NewSession());
    ASSERT_NE(sessions.back(), nullptr);
  }
  std::atomic<int> entered{0};
  std::atomic<int> left{0};
  std::atomic<bool> early_enter{false};
  std::atomic<bool> early_leave{false};
  std::vector<absl::Status> results(kCount);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCount; ++i) {
    threads.emplace_back([&, i] {
      DoubleBarrier db(sessions[i], "dbarrier/a", kCount);
      absl::Status st = db.Enter(Within(60000));
      if (!st.ok()) {
        results[i] = st;
        return;
      }
      // Everyone must have put its key before anyone gets through Enter.
      if (KeysUnder("dbarrier/a/waiters/").size() < static_cast<size_t>(kCount) &&
          entered.load() == 0) {
        early_enter = true;
      }
      ++entered;
      st = db.Leave(Within(60000));
      if (!st.ok()) {
        results[i] = st;
        return;
      }
      if (!KeysUnder("dbarrier/a/waiters/").empty()) early_leave = true;
      ++left;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& st : results) EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ(entered.load(), kCount);
  EXPECT_EQ(left.load(), kCount);
  EXPECT_FALSE(early_enter);
  EXPECT_FALSE(early_leave);
  EXPECT_TRUE(KeysUnder("dbarrier/a/").empty());

  DoubleBarrier zero(sessions[0], "dbarrier/b", 0);
  EXPECT_EQ(zero.Enter(Within(5000)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(zero.Leave(Within(5000)).code(), absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Servers, SyncTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
