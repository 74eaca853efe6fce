// Session: grant and keepalive past the TTL, Close revokes, loss reported once through on_lost,
// Done() and Wait(), bad input, waits bounded by deadline and cancel, fiber-aware Wait.
#include "cairn/recipes/session.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <boost/fiber/all.hpp>

#include "cairn/recipes/counter.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/queue.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using recipes::Session;
using recipes::SessionOptions;

class SessionTest : public RecipeTest {};

TEST_P(SessionTest, KeepsLeaseAliveAndCloseRevokesIt) {
  auto s = NewSession(/*ttl=*/2);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->alive());
  EXPECT_GE(s->ttl_seconds(), 2);
  PutOptions po;
  po.lease = s->lease();
  ASSERT_TRUE(client_->kv().Put("session/key", "v", po).ok());
  // Still alive after more than two TTLs: the keeper renews it. Waiting on the session with a
  // deadline is the bounded wait.
  auto w = s->Wait(Within(5000));
  EXPECT_EQ(w.code(), absl::StatusCode::kDeadlineExceeded) << w;
  EXPECT_TRUE(s->alive());
  auto ttl = client_->lease().TimeToLive(s->lease());
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->ttl_seconds, 0);

  Future<recipes::SessionEnd> done = s->Done();
  EXPECT_FALSE(done.Ready());
  ASSERT_TRUE(s->Close().ok());
  EXPECT_TRUE(s->Close().ok());  // idempotent
  auto end = done.Get();
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->reason.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s->status().code(), absl::StatusCode::kFailedPrecondition);
  ttl = client_->lease().TimeToLive(s->lease());
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->ttl_seconds, -1);
  auto gone = client_->kv().Get("session/key");
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->kvs.empty());
}

TEST_P(SessionTest, LossIsReportedOnce) {
  std::atomic<int> lost{0};
  SessionOptions so;
  so.ttl_seconds = 3;
  so.on_lost = [&](const absl::Status&) { ++lost; };
  auto s = Session::Create(*client_, so);
  ASSERT_TRUE(s.ok()) << s.status();
  Future<recipes::SessionEnd> done = (*s)->Done();
  std::atomic<int> listener{0};
  (*s)->AddEndListener([&](const absl::Status&) { ++listener; });
  ASSERT_TRUE(client_->lease().Revoke((*s)->lease()).ok());
  auto why = (*s)->Wait(Within(30000));
  EXPECT_FALSE(why.ok());
  EXPECT_NE(why.code(), absl::StatusCode::kDeadlineExceeded) << why;
  EXPECT_NE(why.code(), absl::StatusCode::kFailedPrecondition) << why;
  auto end = done.Get();
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->reason, why);
  EXPECT_EQ(lost.load(), 1);
  EXPECT_EQ(listener.load(), 1);
  // A listener added after the end runs at once.
  int late = 0;
  EXPECT_EQ((*s)->AddEndListener([&](const absl::Status&) { ++late; }), 0u);
  EXPECT_EQ(late, 1);
  // Close after the loss is OK and does not report again.
  EXPECT_TRUE((*s)->Close().ok());
  EXPECT_EQ(lost.load(), 1);
}

TEST_P(SessionTest, BadInput) {
  SessionOptions so;
  so.ttl_seconds = 0;
  EXPECT_EQ(Session::Create(*client_, so).status().code(), absl::StatusCode::kInvalidArgument);
  so.ttl_seconds = -5;
  EXPECT_EQ(Session::Create(*client_, so).status().code(), absl::StatusCode::kInvalidArgument);
  so.ttl_seconds = 10;
  so.lease = -1;
  EXPECT_EQ(Session::Create(*client_, so).status().code(), absl::StatusCode::kInvalidArgument);
  so.lease = 0x12345;  // does not exist
  EXPECT_FALSE(Session::Create(*client_, so).ok());
}

TEST_P(SessionTest, AdoptsAnExistingLease) {
  auto g = client_->lease().Grant(10);
  ASSERT_TRUE(g.ok());
  SessionOptions so;
  so.lease = g->id;
  so.ttl_seconds = 0;  // ignored when adopting
  auto s = Session::Create(*client_, so);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->lease(), g->id);
  (*s)->Orphan();
  EXPECT_EQ((*s)->status().code(), absl::StatusCode::kFailedPrecondition);
  // Orphan does not revoke.
  auto ttl = client_->lease().TimeToLive(g->id);
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->ttl_seconds, 0);
}

TEST_P(SessionTest, WaitHonoursCancelAndSuspendsOnlyTheFiber) {
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  CallOptions c;
  c.cancel = CancelToken::Make();
  c.timeout = std::chrono::milliseconds(20000);  // a thread-blocking Wait would end here
  std::atomic<bool> other_fiber_ran{false};
  absl::Status waited;
  // Two fibers on one thread: the waiting one must not block the other, which cancels it.
  boost::fibers::fiber waiter([&] { waited = s->Wait(c); });
  boost::fibers::fiber canceler([&] {
    other_fiber_ran = true;
    c.cancel.Cancel();
  });
  waiter.join();
  canceler.join();
  EXPECT_TRUE(other_fiber_ran);
  EXPECT_EQ(waited.code(), absl::StatusCode::kCancelled) << waited;
  EXPECT_TRUE(s->alive());
}

TEST_P(SessionTest, AsyncForms) {
  auto bad = Session::CreateAsync(*client_,
                                  SessionOptions{.ttl_seconds = 0, .lease = 0, .on_lost = nullptr});
  ASSERT_TRUE(bad.Ready());
  EXPECT_EQ(bad.Get().status().code(), absl::StatusCode::kInvalidArgument);

  Promise<std::shared_ptr<Session>> relay;
  Session::CreateAsync(*client_, SessionOptions{.ttl_seconds = 10, .lease = 0, .on_lost = nullptr})
      .Then([relay](absl::StatusOr<std::shared_ptr<Session>> s) { relay.Set(std::move(s)); });
  auto s = relay.future().Get();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE((*s)->alive());

  recipes::Election e(*s, "async/elect");
  auto none = recipes::GetLeaderAsync(client_->kv(), "async/elect").Get();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(e.Campaign("v", Within(20000)).ok());
  auto leader = recipes::GetLeaderAsync(client_->kv(), "async/elect").Get();
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->value, "v");
  EXPECT_EQ(recipes::GetLeaderAsync(client_->kv(), "").Get().status().code(),
            absl::StatusCode::kInvalidArgument);

  recipes::Counter c(*client_, "async/counter");
  ASSERT_TRUE(c.Add(4).ok());
  auto v = c.GetAsync().Get();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 4);

  recipes::Queue q(*client_, "async/queue");
  ASSERT_TRUE(q.Enqueue("a").ok());
  auto n = q.SizeAsync().Get();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
}

INSTANTIATE_TEST_SUITE_P(Servers, SessionTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
