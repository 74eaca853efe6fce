// The recipes' thread-free async forms (Mutex::LockAsync, RWMutex::{R,}LockAsync,
// Semaphore::AcquireAsync, Barrier::WaitAsync, Election::CampaignAsync/ProclaimAsync/ResignAsync, a
// resumed Election, MultiLock::LockAsync, DoubleBarrier::{Enter,Leave}Async, Queue::DequeueAsync,
// LeaderLatch::AwaitAsync, Counter's and PrefixCache::WaitForRevisionAsync, Queue::ClaimAsync,
// RunStmAsync), the async forms of the short calls (TryLock, releases, barrier hold, enqueue,
// register, session close) and sessions that adopt a lease without keeping it alive or revoking it
// (what the server's v3lock/v3election services are built on), against etcd and cairn.
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/recipes/barrier.h"
#include "cairn/recipes/counter.h"
#include "cairn/recipes/discovery.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/leader_latch.h"
#include "cairn/recipes/multi_lock.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/prefix_cache.h"
#include "cairn/recipes/queue.h"
#include "cairn/recipes/rw_mutex.h"
#include "cairn/recipes/semaphore.h"
#include "cairn/recipes/stm.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Election;
using recipes::Grant;
using recipes::Mutex;
using recipes::RWMutex;
using recipes::Semaphore;
using recipes::Session;
using recipes::SessionOptions;

class AsyncRecipeTest : public RecipeTest {
 protected:
  // A session on `lease` that neither keeps it alive nor revokes it.
  std::shared_ptr<Session> Adopt(LeaseId lease) {
    SessionOptions so;
    so.lease = lease;
    so.keep_alive = false;
    so.revoke_on_close = false;
    auto s = Session::Create(*client_, so);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : nullptr;
  }
  LeaseId NewLease(int64_t ttl = 60) {
    auto g = client_->lease().Grant(ttl);
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? g->id : 0;
  }
};

TEST_P(AsyncRecipeTest, AdoptedLeaseIsNeitherKeptAliveNorRevoked) {
  LeaseId lease = NewLease();
  auto session = Adopt(lease);
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->lease(), lease);
  EXPECT_EQ(session->ttl_seconds(), 0);
  Mutex m(session, "adopt/l");
  auto g = m.LockAsync(Within(20000)).Get();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->lease, lease);
  EXPECT_TRUE(session->Close().ok());
  session.reset();
  // The lease and its key outlive the session.
  auto ttl = client_->lease().TimeToLive(lease);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(ttl->ttl_seconds, 0);
  ASSERT_EQ(KeysUnder("adopt/l/").size(), 1u);
  EXPECT_EQ(KeysUnder("adopt/l/")[0].lease, lease);

  // An adopted lease that does not exist fails at the first write, as etcd's server does.
  auto unknown = Adopt(0x7eadbeef);
  ASSERT_NE(unknown, nullptr);
  Mutex mu(unknown, "adopt/u");
  auto fail = mu.LockAsync(Within(20000)).Get();
  EXPECT_EQ(ErrorKindOf(fail.status()), ErrorKind::kLeaseNotFound) << fail.status();
  EXPECT_TRUE(KeysUnder("adopt/u/").empty());
}

TEST_P(AsyncRecipeTest, LockAsyncWaitsInOrderAndCancelRemovesItsKey) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_TRUE(s0 && s1 && s2);
  Mutex m0(s0, "async/l");
  Mutex m1(s1, "async/l");
  Mutex m2(s2, "async/l");
  ASSERT_TRUE(m0.LockAsync(Within(20000)).Get().ok());

  CallOptions canceled;
  canceled.cancel = CancelToken::Make();
  Future<Grant> f1 = m1.LockAsync(canceled);
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/l/").size() == 2; }));
  Future<Grant> f2 = m2.LockAsync();
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/l/").size() == 3; }));
  EXPECT_FALSE(f1.Ready());
  canceled.cancel.Cancel();
  auto r1 = f1.Get();
  EXPECT_EQ(r1.status().code(), absl::StatusCode::kCancelled) << r1.status();
  EXPECT_TRUE(PollUntil([&] { return KeysUnder("async/l/").size() == 2; }));
  EXPECT_FALSE(f2.Ready());

  ASSERT_TRUE(m0.Unlock().ok());
  auto r2 = f2.Get();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->key, m2.key());
  EXPECT_TRUE(m2.grant().has_value());
  EXPECT_TRUE(m2.Unlock().ok());
  EXPECT_TRUE(KeysUnder("async/l/").empty());
}

// A deadline bounds the whole wait (not only each RPC), and the waiting key is gone by the time
// the DEADLINE_EXCEEDED is reported.
TEST_P(AsyncRecipeTest, DeadlineEndsTheWholeWaitAndRemovesTheKey) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  ASSERT_TRUE(s0 && s1);
  Mutex m0(s0, "async/d");
  Mutex m1(s1, "async/d");
  ASSERT_TRUE(m0.LockAsync(Within(20000)).Get().ok());
  auto late = m1.LockAsync(Within(300)).Get();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  EXPECT_EQ(KeysUnder("async/d/").size(), 1u);
  EXPECT_FALSE(m1.grant().has_value());

  // Already canceled: completes at once and creates nothing.
  CallOptions canceled;
  canceled.cancel = CancelToken::Make();
  canceled.cancel.Cancel();
  Mutex m2(s1, "async/d2");
  EXPECT_EQ(m2.LockAsync(canceled).Get().status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(KeysUnder("async/d2/").empty());
}

TEST_P(AsyncRecipeTest, RWMutexAsyncSharesReadersAndQueuesWriters) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_TRUE(s0 && s1 && s2);
  RWMutex r0(s0, "async/rw");
  RWMutex r1(s1, "async/rw");
  RWMutex w2(s2, "async/rw");
  ASSERT_TRUE(r0.RLockAsync(Within(20000)).Get().ok());
  auto shared = r1.RLockAsync(Within(20000)).Get();  // readers share
  ASSERT_TRUE(shared.ok()) << shared.status();

  auto timed_out = w2.LockAsync(Within(300)).Get();
  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kDeadlineExceeded) << timed_out.status();
  EXPECT_EQ(KeysUnder("async/rw/").size(), 2u);

  Future<Grant> writer = w2.LockAsync(Within(30000));
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/rw/").size() == 3; }));
  ASSERT_TRUE(r0.Unlock().ok());
  EXPECT_FALSE(writer.Ready());  // r1 still reads
  ASSERT_TRUE(r1.Unlock().ok());
  auto w = writer.Get();
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_GT(w->fencing_token, shared->fencing_token);
  EXPECT_TRUE(w2.grant().has_value());
  EXPECT_EQ(w2.RLockAsync().Get().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(w2.Unlock().ok());
  EXPECT_TRUE(KeysUnder("async/rw/").empty());
}

TEST_P(AsyncRecipeTest, SemaphoreAsyncGrantsPermitsInOrder) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_TRUE(s0 && s1 && s2);
  Semaphore a(s0, "async/sem", 2);
  Semaphore b(s1, "async/sem", 2);
  Semaphore c(s2, "async/sem", 2);
  ASSERT_TRUE(a.AcquireAsync(Within(20000)).Get().ok());
  ASSERT_TRUE(b.AcquireAsync(Within(20000)).Get().ok());

  auto timed_out = c.AcquireAsync(Within(300)).Get();
  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kDeadlineExceeded) << timed_out.status();
  EXPECT_EQ(KeysUnder("async/sem/").size(), 2u);

  Future<Grant> third = c.AcquireAsync(Within(30000));
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/sem/").size() == 3; }));
  EXPECT_FALSE(third.Ready());
  ASSERT_TRUE(b.Release().ok());
  auto g = third.Get();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(c.grant().has_value());
  Semaphore bad(s1, "async/sem0", 0);
  EXPECT_EQ(bad.AcquireAsync().Get().status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(a.Release().ok());
  ASSERT_TRUE(c.Release().ok());
  EXPECT_TRUE(KeysUnder("async/sem/").empty());
}

TEST_P(AsyncRecipeTest, BarrierWaitAsyncEndsOnReleaseDeadlineOrCancel) {
  auto s0 = NewSession();
  ASSERT_TRUE(s0);
  recipes::Barrier held(s0, "async/bar");
  recipes::Barrier waiter(*client_, "async/bar");
  ASSERT_TRUE(waiter.WaitAsync(Within(20000)).Get().ok());  // not held: at once
  ASSERT_TRUE(held.Hold().ok());
  auto late = waiter.WaitAsync(Within(300)).Get();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  CallOptions canceled = Within(30000);
  canceled.cancel = CancelToken::Make();
  Future<recipes::Completed> gone = waiter.WaitAsync(canceled);
  canceled.cancel.Cancel();
  EXPECT_EQ(gone.Get().status().code(), absl::StatusCode::kCancelled);

  Future<recipes::Completed> f = waiter.WaitAsync(Within(30000));
  EXPECT_FALSE(f.Ready());
  ASSERT_TRUE(held.Release().ok());
  auto done = f.Get();
  EXPECT_TRUE(done.ok()) << done.status();
}

TEST_P(AsyncRecipeTest, CampaignProclaimResignAsyncAndResume) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  ASSERT_TRUE(s0 && s1);
  Election e0(s0, "async/e");
  Election e1(s1, "async/e");
  auto lead = e0.CampaignAsync("a", Within(20000)).Get();
  ASSERT_TRUE(lead.ok()) << lead.status();
  Future<Grant> waiting = e1.CampaignAsync("b");
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/e/").size() == 2; }));

  // A resumed election acts on the leadership it is given.
  Election resumed(s0, "async/e", *lead);
  auto h = resumed.ProclaimAsync("a2", Within(20000)).Get();
  ASSERT_TRUE(h.ok()) << h.status();
  auto leader = e1.Leader(Within(20000));
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->value, "a2");
  EXPECT_EQ(leader->mod_revision, h->revision);
  EXPECT_FALSE(waiting.Ready());

  // A stale leadership cannot proclaim.
  Grant stale = *lead;
  stale.fencing_token -= 1;
  Election wrong(s0, "async/e", stale);
  auto refused = wrong.ProclaimAsync("x", Within(20000)).Get();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();

  auto resigned = resumed.ResignAsync(Within(20000)).Get();
  ASSERT_TRUE(resigned.ok()) << resigned.status();
  auto next = waiting.Get();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->key, e1.key());
  EXPECT_GE(next->header.revision, resigned->revision);  // read after the resign
  auto r = e1.ResignAsync(Within(20000)).Get();
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(KeysUnder("async/e/").empty());
}

// The threads of this process (a thread-free wait adds none).
size_t ThreadCount() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    ++n;
  }
  return n;
}

// Fewer new threads than this while many waits are pending means no thread per wait.
constexpr size_t kWaiters = 8;
constexpr size_t kThreadSlack = 4;

TEST_P(AsyncRecipeTest, MultiLockAsyncTakesAllOrNoneWithoutAThreadPerWait) {
  auto s0 = NewSession();
  ASSERT_TRUE(s0);
  Mutex held(s0, "async/m/b");
  ASSERT_TRUE(held.LockAsync(Within(20000)).Get().ok());

  // A deadline while waiting for b releases a (taken first, sorted order) before it reports.
  auto s1 = NewSession();
  ASSERT_TRUE(s1);
  recipes::MultiLock late(s1, {"async/m/b", "async/m/a"});
  auto timed_out = late.LockAsync(Within(300)).Get();
  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kDeadlineExceeded) << timed_out.status();
  EXPECT_TRUE(KeysUnder("async/m/a/").empty());
  EXPECT_EQ(KeysUnder("async/m/b/").size(), 1u);

  // Canceling the future does the same.
  Future<std::vector<Grant>> canceled = late.LockAsync();
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/m/b/").size() == 2; }));
  canceled.Cancel();
  EXPECT_EQ(canceled.Get().status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(KeysUnder("async/m/a/").empty());
  EXPECT_EQ(KeysUnder("async/m/b/").size(), 1u);

  // Many waiters park no thread; each gets both locks in turn once b is free.
  std::vector<std::shared_ptr<Session>> sessions;
  std::vector<std::unique_ptr<recipes::MultiLock>> locks;
  std::vector<Future<std::vector<Grant>>> waits;
  const size_t before = ThreadCount();
  for (size_t i = 0; i < kWaiters; ++i) {
    sessions.push_back(NewSession());
    ASSERT_TRUE(sessions.back());
    locks.push_back(std::make_unique<recipes::MultiLock>(
        sessions.back(), std::vector<std::string>{"async/m/a", "async/m/b"}));
    waits.push_back(locks.back()->LockAsync(Within(60000)));
  }
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/m/a/").size() == kWaiters; }));
  EXPECT_LT(ThreadCount(), before + kThreadSlack);
  ASSERT_TRUE(held.Unlock().ok());
  for (size_t i = 0; i < kWaiters; ++i) {
    size_t owner = kWaiters;
    ASSERT_TRUE(PollUntil([&] {
      for (size_t j = 0; j < kWaiters; ++j) {
        if (waits[j].valid() && waits[j].Ready()) owner = j;
      }
      return owner != kWaiters;
    }));
    auto g = waits[owner].Get();
    ASSERT_TRUE(g.ok()) << g.status();
    ASSERT_EQ(g->size(), 2u);
    auto fenced = client_->kv().Commit(Txn().If(locks[owner]->Guards()));
    ASSERT_TRUE(fenced.ok() && fenced->succeeded);
    waits[owner] = Future<std::vector<Grant>>();
    ASSERT_TRUE(locks[owner]->Unlock().ok());
  }
  EXPECT_TRUE(KeysUnder("async/m/").empty());
}

TEST_P(AsyncRecipeTest, DoubleBarrierAsyncEntersAndLeavesTogether) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  ASSERT_TRUE(s0 && s1);
  recipes::DoubleBarrier d0(s0, "async/db", 2);
  recipes::DoubleBarrier d1(s1, "async/db", 2);
  auto alone = d0.EnterAsync(Within(300)).Get();
  EXPECT_EQ(alone.status().code(), absl::StatusCode::kDeadlineExceeded) << alone.status();
  EXPECT_TRUE(KeysUnder("async/db/waiters/").empty());  // removed before it reported

  CallOptions canceled;
  canceled.cancel = CancelToken::Make();
  Future<recipes::Completed> gone = d0.EnterAsync(canceled);
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/db/waiters/").size() == 1; }));
  canceled.cancel.Cancel();
  EXPECT_EQ(gone.Get().status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(KeysUnder("async/db/waiters/").empty());

  Future<recipes::Completed> first = d0.EnterAsync(Within(30000));
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("async/db/waiters/").size() == 1; }));
  EXPECT_FALSE(first.Ready());
  auto second = d1.EnterAsync(Within(30000)).Get();
  ASSERT_TRUE(second.ok()) << second.status();
  auto in = first.Get();
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(d0.EnterAsync().Get().status().code(), absl::StatusCode::kFailedPrecondition);

  Future<recipes::Completed> l0 = d0.LeaveAsync(Within(30000));
  Future<recipes::Completed> l1 = d1.LeaveAsync(Within(30000));
  auto out0 = l0.Get();
  auto out1 = l1.Get();
  EXPECT_TRUE(out0.ok()) << out0.status();
  EXPECT_TRUE(out1.ok()) << out1.status();
  EXPECT_TRUE(KeysUnder("async/db/").empty());
  EXPECT_EQ(d0.LeaveAsync().Get().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(AsyncRecipeTest, QueueDequeueAsyncWaitsWithoutAThreadAndLosesNoItem) {
  recipes::Queue q(*client_, "async/q");
  auto late = q.DequeueAsync(Within(300)).Get();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  CallOptions canceled;
  canceled.cancel = CancelToken::Make();
  Future<recipes::QueueItem> gone = q.DequeueAsync(canceled);
  canceled.cancel.Cancel();
  EXPECT_EQ(gone.Get().status().code(), absl::StatusCode::kCancelled);

  const size_t before = ThreadCount();
  std::vector<Future<recipes::QueueItem>> waits;
  for (size_t i = 0; i < kWaiters; ++i) waits.push_back(q.DequeueAsync(Within(60000)));
  EXPECT_LT(ThreadCount(), before + kThreadSlack);
  for (auto& w : waits) EXPECT_FALSE(w.Ready());
  std::set<std::string> put;
  for (size_t i = 0; i < kWaiters; ++i) {
    put.insert("item" + std::to_string(i));
    ASSERT_TRUE(q.Enqueue("item" + std::to_string(i), static_cast<int>(i % 3)).ok());
  }
  std::set<std::string> got;
  for (auto& w : waits) {
    auto item = w.Get();
    ASSERT_TRUE(item.ok()) << item.status();
    got.insert(item->value);
  }
  EXPECT_EQ(got, put);  // each item taken exactly once, none by the canceled waits
  auto size = q.Size();
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 0);
  auto none = q.TryDequeue();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
}

TEST_P(AsyncRecipeTest, LeaderLatchAwaitAsyncEndsOnLeadershipDeadlineOrCancel) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  ASSERT_TRUE(s0 && s1);
  Election e0(s0, "async/latch");
  ASSERT_TRUE(e0.CampaignAsync("first", Within(20000)).Get().ok());
  auto latch = recipes::LeaderLatch::Start(s1, "async/latch");
  ASSERT_TRUE(latch.ok()) << latch.status();
  auto late = (*latch)->AwaitAsync(Within(300)).Get();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  Future<Grant> canceled = (*latch)->AwaitAsync();
  canceled.Cancel();
  EXPECT_EQ(canceled.Get().status().code(), absl::StatusCode::kCancelled);

  Future<Grant> lead = (*latch)->AwaitAsync(Within(30000));
  Future<Grant> also = (*latch)->AwaitAsync();
  EXPECT_FALSE(lead.Ready());
  ASSERT_TRUE(e0.Resign().ok());
  auto g = lead.Get();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE((*latch)->has_leadership());
  EXPECT_TRUE(also.Get().ok());
  (*latch)->Close();
  EXPECT_EQ((*latch)->AwaitAsync().Get().status().code(), absl::StatusCode::kCancelled);
}

TEST_P(AsyncRecipeTest, CounterAndCacheAsyncForms) {
  recipes::Counter hits(*client_, "async/hits");
  std::vector<Future<int64_t>> adds;
  for (int i = 0; i < 10; ++i) adds.push_back(hits.AddAsync(1, Within(30000)));
  std::set<int64_t> seen;
  for (auto& a : adds) {
    auto v = a.Get();
    ASSERT_TRUE(v.ok()) << v.status();
    seen.insert(*v);
  }
  EXPECT_EQ(seen.size(), 10u);  // every add saw its own value: none lost to a conflict
  EXPECT_EQ(*hits.GetAsync().Get(), 10);
  EXPECT_FALSE(*hits.CompareAndSetAsync(9, 1).Get());
  EXPECT_TRUE(*hits.CompareAndSetAsync(10, 20).Get());
  ASSERT_TRUE(hits.SetAsync(5).Get().ok());
  EXPECT_EQ(*hits.Get(), 5);

  auto cache = recipes::PrefixCache::Start(*client_, "async/cache/");
  ASSERT_TRUE(cache.ok()) << cache.status();
  Revision now = (*cache)->revision();
  auto late = (*cache)->WaitForRevisionAsync(now + 1000, Within(300)).Get();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  Future<recipes::Completed> next = (*cache)->WaitForRevisionAsync(now + 1, Within(30000));
  auto put = client_->kv().Put("async/cache/a", "1");
  ASSERT_TRUE(put.ok());
  EXPECT_TRUE(next.Get().ok());
  EXPECT_TRUE((*cache)->Get("async/cache/a").has_value());
}

TEST_P(AsyncRecipeTest, QueueClaimAsyncWaitsWithoutAThreadAndGivesBackCanceledClaims) {
  auto session = NewSession();
  ASSERT_TRUE(session);
  recipes::Queue q(*client_, "async/cq");
  auto late = q.ClaimAsync(*session, Within(300)).Get();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  CallOptions canceled;
  canceled.cancel = CancelToken::Make();
  Future<recipes::ClaimedItem> gone = q.ClaimAsync(*session, canceled);
  canceled.cancel.Cancel();
  EXPECT_EQ(gone.Get().status().code(), absl::StatusCode::kCancelled);

  // Many pending claims park no thread; each item is claimed by exactly one of them.
  const size_t before = ThreadCount();
  std::vector<Future<recipes::ClaimedItem>> waits;
  for (size_t i = 0; i < kWaiters; ++i) waits.push_back(q.ClaimAsync(*session, Within(60000)));
  EXPECT_LT(ThreadCount(), before + kThreadSlack);
  for (auto& w : waits) EXPECT_FALSE(w.Ready());
  std::set<std::string> put;
  for (size_t i = 0; i < kWaiters; ++i) {
    put.insert("job" + std::to_string(i));
    ASSERT_TRUE(q.Enqueue("job" + std::to_string(i), static_cast<int>(i % 2)).ok());
  }
  std::set<std::string> got;
  for (auto& w : waits) {
    auto c = w.Get();
    ASSERT_TRUE(c.ok()) << c.status();
    got.insert(c->item.value);
    EXPECT_EQ(c->item.priority, c->item.value.back() % 2 == 0 ? 0 : 1);
    ASSERT_TRUE(q.Ack(*c).ok());
  }
  EXPECT_EQ(got, put);
  EXPECT_TRUE(KeysUnder("async/cq").empty());  // items and claims gone

  // A claim released goes to the next claimer; TryClaim finds nothing once all are claimed.
  ASSERT_TRUE(q.Enqueue("again").ok());
  auto first = q.ClaimAsync(*session, Within(30000)).Get();
  ASSERT_TRUE(first.ok()) << first.status();
  auto none = q.TryClaim(*session);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  Future<recipes::ClaimedItem> next = q.ClaimAsync(*session, Within(30000));
  ASSERT_TRUE(q.Release(*first).ok());
  auto second = next.Get();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->item.key, first->item.key);
  ASSERT_TRUE(q.Ack(*second).ok());
}

TEST_P(AsyncRecipeTest, RunStmAsyncRereadsWithoutAThreadAndStaysSerializable) {
  ASSERT_TRUE(client_->kv().Put("async/stm/a", "100").ok());
  ASSERT_TRUE(client_->kv().Put("async/stm/b", "0").ok());
  // Moves 1 from a to b; `apply` runs again after each first read of a key.
  auto move = [](recipes::Stm& stm) -> absl::Status {
    auto a = stm.Get("async/stm/a");
    if (!a.ok()) return a.status();
    auto b = stm.Get("async/stm/b");
    if (!b.ok()) return b.status();
    stm.Put("async/stm/a", std::to_string(std::stoi(*a) - 1));
    stm.Put("async/stm/b", std::to_string(std::stoi(*b) + 1));
    return absl::OkStatus();
  };
  const size_t before = ThreadCount();
  std::vector<Future<TxnResponse>> runs;
  for (size_t i = 0; i < kWaiters; ++i) {
    recipes::StmOptions o;
    o.call = Within(60000);
    runs.push_back(recipes::RunStmAsync(client_->kv(), move, o));
  }
  EXPECT_LT(ThreadCount(), before + kThreadSlack);
  for (auto& r : runs) {
    auto t = r.Get();
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_TRUE(t->succeeded);
  }
  auto a = client_->kv().Get("async/stm/a");
  auto b = client_->kv().Get("async/stm/b");
  ASSERT_TRUE(a.ok() && b.ok() && !a->kvs.empty() && !b->kvs.empty());
  EXPECT_EQ(a->kvs[0].value, std::to_string(100 - kWaiters));
  EXPECT_EQ(b->kvs[0].value, std::to_string(kWaiters));

  // apply's own error ends it with nothing written.
  auto failed = recipes::RunStmAsync(client_->kv(), [](recipes::Stm& stm) -> absl::Status {
                  auto a = stm.Get("async/stm/a");
                  if (!a.ok()) return a.status();
                  stm.Put("async/stm/a", "lost");
                  return absl::FailedPreconditionError("no");
                }).Get();
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kFailedPrecondition) << failed.status();
  EXPECT_EQ(client_->kv().Get("async/stm/a")->kvs[0].value, std::to_string(100 - kWaiters));
}

TEST_P(AsyncRecipeTest, ReleasesAndShortCallsHaveAsyncForms) {
  auto s0 = NewSession();
  auto s1 = NewSession();
  ASSERT_TRUE(s0 && s1);
  Mutex m0(s0, "async/short/m");
  Mutex m1(s1, "async/short/m");
  auto got = m0.TryLockAsync(Within(20000)).Get();
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  auto busy = m1.TryLockAsync(Within(20000)).Get();
  ASSERT_TRUE(busy.ok()) << busy.status();
  EXPECT_FALSE(busy->has_value());
  EXPECT_EQ(KeysUnder("async/short/m/").size(), 1u);  // the failed try left no key
  ASSERT_TRUE(m0.UnlockAsync().Get().ok());

  RWMutex rw(s0, "async/short/rw");
  ASSERT_TRUE(rw.RLockAsync(Within(20000)).Get().ok());
  ASSERT_TRUE(rw.UnlockAsync().Get().ok());
  EXPECT_FALSE(rw.grant().has_value());
  EXPECT_EQ(rw.UnlockAsync().Get().status().code(), absl::StatusCode::kFailedPrecondition);
  Semaphore sem(s0, "async/short/sem", 2);
  ASSERT_TRUE(sem.AcquireAsync(Within(20000)).Get().ok());
  ASSERT_TRUE(sem.ReleaseAsync().Get().ok());
  EXPECT_FALSE(sem.grant().has_value());
  recipes::MultiLock ml(s0, {"async/short/x", "async/short/y"});
  ASSERT_TRUE(ml.LockAsync(Within(20000)).Get().ok());
  ASSERT_TRUE(ml.UnlockAsync().Get().ok());
  EXPECT_TRUE(KeysUnder("async/short/").empty());

  recipes::Barrier bar(s0, "async/short/bar");
  ASSERT_TRUE(bar.HoldAsync().Get().ok());
  EXPECT_EQ(bar.HoldAsync().Get().status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(bar.ReleaseAsync().Get().ok());
  EXPECT_TRUE(KeysUnder("async/short/bar").empty());

  recipes::Queue q(*client_, "async/short/q");
  auto key = q.EnqueueAsync("v", 3).Get();
  ASSERT_TRUE(key.ok()) << key.status();
  auto item = q.TryDequeueAsync().Get();
  ASSERT_TRUE(item.ok() && item->has_value()) << item.status();
  EXPECT_EQ((*item)->key, *key);
  EXPECT_EQ((*item)->priority, 3);

  recipes::ServiceEndpoint e{"10.0.0.1:80", "", "api-1"};
  ASSERT_TRUE(recipes::RegisterEndpointAsync(*s1, "async/short/svc", e).Get().ok());
  EXPECT_EQ(KeysUnder("async/short/svc/").size(), 1u);
  ASSERT_TRUE(s1->CloseAsync().Get().ok());
  EXPECT_FALSE(s1->alive());
  EXPECT_TRUE(KeysUnder("async/short/svc/").empty());  // revoked with the session's lease
  EXPECT_TRUE(s1->CloseAsync().Get().ok());            // idempotent
}

INSTANTIATE_TEST_SUITE_P(Servers, AsyncRecipeTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
