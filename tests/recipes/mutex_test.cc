// Mutex: key layout, exclusion and FIFO order, TryLock, deadlines and cancellation, a lost
// holder lease letting the next waiter in (and the old holder's guard refused), a session lost
// while waiting, bad input, and interop with `etcdctl lock` in both directions.
#include "cairn/recipes/mutex.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <boost/fiber/all.hpp>

#include "absl/strings/numbers.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Grant;
using recipes::Mutex;

std::string Hex(LeaseId id) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(id));
  return buf;
}

class MutexTest : public RecipeTest {};

TEST_P(MutexTest, LockUsesEtcdKeyLayoutAndFencingToken) {
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  Mutex mu(s, "locks/a");
  EXPECT_EQ(mu.key(), "locks/a/" + Hex(s->lease()));
  auto g = mu.Lock(Within(20000));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->key, mu.key());
  auto kv = client_->kv().Get(g->key);
  ASSERT_TRUE(kv.ok());
  ASSERT_EQ(kv->kvs.size(), 1u);
  EXPECT_EQ(kv->kvs[0].create_revision, g->fencing_token);
  EXPECT_EQ(kv->kvs[0].lease, s->lease());
  ASSERT_TRUE(mu.grant().has_value());

  // The guard lets a transaction through while the lock is held.
  Txn t;
  t.If({g->Guard()}).Then({Op::Put("protected", "1")});
  auto tr = client_->kv().Commit(t);
  ASSERT_TRUE(tr.ok());
  EXPECT_TRUE(tr->succeeded);

  ASSERT_TRUE(mu.Unlock().ok());
  EXPECT_TRUE(KeysUnder("locks/a/").empty());
  EXPECT_FALSE(mu.grant().has_value());
  tr = client_->kv().Commit(t);
  ASSERT_TRUE(tr.ok());
  EXPECT_FALSE(tr->succeeded);

  // Lock again: a new, larger fencing token.
  auto g2 = mu.Lock(Within(20000));
  ASSERT_TRUE(g2.ok()) << g2.status();
  EXPECT_GT(g2->fencing_token, g->fencing_token);
}

TEST_P(MutexTest, BadInputAndMisuse) {
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  Mutex empty(s, "");
  EXPECT_EQ(empty.Lock(Within(5000)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.TryLock(Within(5000)).status().code(), absl::StatusCode::kInvalidArgument);

  Mutex mu(s, "locks/misuse");
  EXPECT_EQ(mu.Unlock().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(mu.Lock(Within(20000)).ok());
  EXPECT_EQ(mu.Lock(Within(5000)).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(mu.Unlock().ok());
  EXPECT_EQ(mu.Unlock().code(), absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(s->Close().ok());
  EXPECT_EQ(mu.Lock(Within(5000)).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mu.TryLock(Within(5000)).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(MutexTest, ExcludesAndGrantsInArrivalOrder) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_TRUE(s0 && s1 && s2);
  Mutex m0(s0, "locks/fifo");
  Mutex m1(s1, "locks/fifo");
  Mutex m2(s2, "locks/fifo");
  auto g0 = m0.Lock(Within(20000));
  ASSERT_TRUE(g0.ok()) << g0.status();

  std::mutex order_mu;
  std::vector<int> order;
  std::atomic<int> holders{1};
  std::atomic<bool> overlap{false};
  auto contender = [&](Mutex* m, int id, absl::StatusOr<Grant>* out) {
    *out = m->Lock(Within(30000));
    if (!out->ok()) return;
    if (holders.fetch_add(1) != 0) overlap = true;
    {
      std::lock_guard<std::mutex> lock(order_mu);
      order.push_back(id);
    }
    holders.fetch_sub(1);
    (void)m->Unlock(Within(10000));
  };
  absl::StatusOr<Grant> g1, g2;
  std::thread t1(contender, &m1, 1, &g1);
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("locks/fifo/").size() == 2; }));
  std::thread t2(contender, &m2, 2, &g2);
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("locks/fifo/").size() == 3; }));
  {
    std::lock_guard<std::mutex> lock(order_mu);
    EXPECT_TRUE(order.empty()) << "a waiter got the lock while it was held";
  }
  holders.fetch_sub(1);
  ASSERT_TRUE(m0.Unlock().ok());
  t1.join();
  t2.join();
  ASSERT_TRUE(g1.ok()) << g1.status();
  ASSERT_TRUE(g2.ok()) << g2.status();
  EXPECT_FALSE(overlap);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_LT(g0->fencing_token, g1->fencing_token);
  EXPECT_LT(g1->fencing_token, g2->fencing_token);
}

TEST_P(MutexTest, TryLockFailsWithoutWaitingAndLeavesNoKey) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  ASSERT_TRUE(s0 && s1);
  Mutex m0(s0, "locks/try");
  Mutex m1(s1, "locks/try");
  auto g0 = m0.TryLock(Within(20000));
  ASSERT_TRUE(g0.ok()) << g0.status();
  ASSERT_TRUE(g0->has_value());
  auto g1 = m1.TryLock(Within(20000));
  ASSERT_TRUE(g1.ok()) << g1.status();
  EXPECT_FALSE(g1->has_value());
  EXPECT_EQ(KeysUnder("locks/try/").size(), 1u);
  ASSERT_TRUE(m0.Unlock().ok());
  g1 = m1.TryLock(Within(20000));
  ASSERT_TRUE(g1.ok());
  EXPECT_TRUE(g1->has_value());
}

TEST_P(MutexTest, DeadlineAndCancelRemoveTheWaiterKey) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  ASSERT_TRUE(s0 && s1);
  Mutex m0(s0, "locks/wait");
  Mutex m1(s1, "locks/wait");
  ASSERT_TRUE(m0.Lock(Within(20000)).ok());

  auto timed = m1.Lock(Within(300));
  EXPECT_EQ(timed.status().code(), absl::StatusCode::kDeadlineExceeded) << timed.status();
  EXPECT_EQ(KeysUnder("locks/wait/").size(), 1u);

  CallOptions c;
  c.cancel = CancelToken::Make();
  absl::StatusOr<Grant> canceled;
  std::thread t([&] { canceled = m1.Lock(c); });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("locks/wait/").size() == 2; }));
  c.cancel.Cancel();
  t.join();
  EXPECT_EQ(canceled.status().code(), absl::StatusCode::kCancelled) << canceled.status();
  EXPECT_EQ(KeysUnder("locks/wait/").size(), 1u);
}

TEST_P(MutexTest, ExpiredHolderLetsNextWaiterInAndItsGuardIsRefused) {
  auto holder_session = NewSession(/*ttl=*/2);
  auto waiter_session = NewSession();
  ASSERT_TRUE(holder_session && waiter_session);
  Mutex holder(holder_session, "locks/expire");
  Mutex waiter(waiter_session, "locks/expire");
  auto hg = holder.Lock(Within(20000));
  ASSERT_TRUE(hg.ok()) << hg.status();

  absl::StatusOr<Grant> wg;
  std::thread t([&] { wg = waiter.Lock(Within(60000)); });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("locks/expire/").size() == 2; }));
  // The holder stops renewing (a crashed or partitioned holder): its lease runs out.
  holder_session->Orphan();
  t.join();
  ASSERT_TRUE(wg.ok()) << wg.status();
  EXPECT_GT(wg->fencing_token, hg->fencing_token);

  // The old holder's guarded write is refused; the new holder's goes through.
  Txn stale;
  stale.If({hg->Guard()}).Then({Op::Put("fenced", "old")});
  auto r = client_->kv().Commit(stale);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  Txn fresh;
  fresh.If({wg->Guard()}).Then({Op::Put("fenced", "new")});
  r = client_->kv().Commit(fresh);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->succeeded);
}

TEST_P(MutexTest, SessionLostWhileWaitingFailsTheLock) {
  auto s0 = NewSession();
  auto s1 = NewSession(/*ttl=*/3);
  ASSERT_TRUE(s0 && s1);
  Mutex m0(s0, "locks/lost");
  Mutex m1(s1, "locks/lost");
  ASSERT_TRUE(m0.Lock(Within(20000)).ok());
  absl::StatusOr<Grant> g;
  std::thread t([&] { g = m1.Lock(Within(60000)); });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("locks/lost/").size() == 2; }));
  ASSERT_TRUE(client_->lease().Revoke(s1->lease()).ok());
  t.join();
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().code(), absl::StatusCode::kDeadlineExceeded) << g.status();
  EXPECT_FALSE(s1->alive());
  // The holder is unaffected.
  EXPECT_EQ(KeysUnder("locks/lost/").size(), 1u);
}

TEST_P(MutexTest, WaitsWhileEtcdctlHoldsTheLock) {
  std::string out = TempPath("etcdctl_lock");
  BackgroundCommand etcdctl(Etcdctl({"lock", "locks/interop", "--ttl=10"}), out);
  ASSERT_TRUE(etcdctl.started());
  // etcdctl prints its key once it holds the lock.
  ASSERT_TRUE(PollUntil([&] {
    return etcdctl.Output().find("locks/interop/") != std::string::npos;
  })) << etcdctl.Output();
  auto keys = KeysUnder("locks/interop/");
  ASSERT_EQ(keys.size(), 1u);
  std::string etcdctl_key = keys[0].key;

  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  Mutex mu(s, "locks/interop");
  std::atomic<bool> acquired{false};
  absl::StatusOr<Grant> g;
  std::thread t([&] {
    g = mu.Lock(Within(60000));
    acquired = true;
  });
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("locks/interop/").size() == 2; }));
  EXPECT_FALSE(acquired) << "Lock returned while etcdctl held the lock";
  EXPECT_EQ(etcdctl.Terminate(), 0) << etcdctl.Output();
  t.join();
  ASSERT_TRUE(g.ok()) << g.status();
  auto gone = client_->kv().Get(etcdctl_key);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->kvs.empty());
  ASSERT_TRUE(mu.Unlock().ok());
}

TEST_P(MutexTest, EtcdctlWaitsWhileWeHoldTheLock) {
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  Mutex mu(s, "locks/interop2");
  ASSERT_TRUE(mu.Lock(Within(20000)).ok());
  std::string out = TempPath("etcdctl_lock2");
  BackgroundCommand etcdctl(Etcdctl({"lock", "locks/interop2", "--ttl=10"}), out);
  ASSERT_TRUE(etcdctl.started());
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("locks/interop2/").size() == 2; }));
  EXPECT_EQ(etcdctl.Output().find("locks/interop2/"), std::string::npos)
      << "etcdctl got the lock while we held it: " << etcdctl.Output();
  ASSERT_TRUE(mu.Unlock().ok());
  EXPECT_TRUE(PollUntil([&] {
    return etcdctl.Output().find("locks/interop2/") != std::string::npos;
  })) << etcdctl.Output();
  EXPECT_EQ(etcdctl.Terminate(), 0) << etcdctl.Output();
  EXPECT_TRUE(KeysUnder("locks/interop2/").empty());
}

TEST_P(MutexTest, LockWaitSuspendsOnlyTheFiber) {
  // Two fibers on one thread: the waiting Lock must let the holder's fiber run and unlock. A
  // thread-blocking wait would end only at the waiter's deadline.
  auto s0 = NewSession();
  auto s1 = NewSession();
  ASSERT_TRUE(s0 && s1);
  Mutex m0(s0, "locks/fiber");
  Mutex m1(s1, "locks/fiber");
  ASSERT_TRUE(m0.Lock(Within(20000)).ok());
  absl::StatusOr<Grant> waited;
  absl::Status unlocked;
  boost::fibers::fiber waiter([&] { waited = m1.Lock(Within(20000)); });
  boost::fibers::fiber holder([&] {
    // Let the waiter queue its key first (bounded; yields so the waiter's fiber runs).
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (KeysUnder("locks/fiber/").size() < 2 && Clock::now() < deadline) {
      boost::this_fiber::yield();
    }
    unlocked = m0.Unlock(Within(10000));
  });
  waiter.join();
  holder.join();
  ASSERT_TRUE(unlocked.ok()) << unlocked;
  ASSERT_TRUE(waited.ok()) << waited.status();
  ASSERT_TRUE(m1.Unlock().ok());
}

TEST_P(MutexTest, ManyContendersNeverOverlap) {
  // Each round a contender locks, does an unguarded read-modify-write of a shared counter (which
  // loses updates if two ever overlap) plus a guarded write, and unlocks.
  constexpr int kContenders = 5;
  constexpr int kRounds = 8;
  std::vector<std::shared_ptr<recipes::Session>> sessions;
  for (int i = 0; i < kContenders; ++i) {
    sessions.push_back(NewSession());
    ASSERT_NE(sessions.back(), nullptr);
  }
  ASSERT_TRUE(client_->kv().Put("stress/count", "0").ok());
  std::atomic<int> inside{0};
  std::atomic<bool> overlap{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kContenders; ++i) {
    threads.emplace_back([&, i] {
      Mutex mu(sessions[i], "locks/stress");
      for (int r = 0; r < kRounds; ++r) {
        auto g = mu.Lock(Within(60000));
        if (!g.ok()) {
          ++errors;
          continue;
        }
        if (inside.fetch_add(1) != 0) overlap = true;
        auto cur = client_->kv().Get("stress/count");
        int n = 0;
        if (!cur.ok() || cur->kvs.empty() || !absl::SimpleAtoi(cur->kvs[0].value, &n)) ++errors;
        Txn t;
        t.If({g->Guard()}).Then({Op::Put("stress/count", std::to_string(n + 1))});
        auto w = client_->kv().Commit(t);
        if (!w.ok() || !w->succeeded) ++errors;
        inside.fetch_sub(1);
        if (!mu.Unlock(Within(10000)).ok()) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(overlap);
  EXPECT_EQ(errors.load(), 0);
  auto final_count = client_->kv().Get("stress/count");
  ASSERT_TRUE(final_count.ok());
  ASSERT_EQ(final_count->kvs.size(), 1u);
  EXPECT_EQ(final_count->kvs[0].value, std::to_string(kContenders * kRounds));
  EXPECT_TRUE(KeysUnder("locks/stress/").empty());
}

INSTANTIATE_TEST_SUITE_P(Servers, MutexTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
