// Tests of the Forwarder: calls to the leader complete by callback, never on a blocked caller.
// A fake leader function and a fake remote stand in for raft and the transport; time is real but
// short (the leader wait is a few heartbeats), and no test asserts a duration.
#include "server/etcdserver/forwarder.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/base/errors.h"

namespace cairn::etcdserver {
namespace {

using base::ErrorKind;

constexpr uint64_t kSelf = 1;
constexpr uint64_t kOther = 2;

// The remote side: holds each call's reply until the test answers it.
class FakeLeader {
 public:
  void Call(uint64_t to, int64_t timeout_ms, Forwarder::Reply<int> reply) {
    std::lock_guard<std::mutex> l(mu_);
    calls_.push_back({to, timeout_ms, std::move(reply)});
  }
  size_t calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_.size();
  }
  int64_t timeout_of(size_t i) {
    std::lock_guard<std::mutex> l(mu_);
    return calls_.at(i).timeout_ms;
  }
  void Answer(size_t i, absl::StatusOr<int> r) {
    Forwarder::Reply<int> reply;
    {
      std::lock_guard<std::mutex> l(mu_);
      reply = std::move(calls_.at(i).reply);
    }
    reply(std::move(r));
  }

 private:
  struct Pending {
    uint64_t to;
    int64_t timeout_ms;
    Forwarder::Reply<int> reply;
  };
  std::mutex mu_;
  std::vector<Pending> calls_;
};

class ForwarderTest : public ::testing::Test {
 protected:
  std::unique_ptr<Forwarder> Make(int64_t leader_wait_ms) {
    Forwarder::Options o;
    o.member_id = kSelf;
    o.heartbeat_interval_ms = 5;
    o.leader_wait_ms = leader_wait_ms;
    o.leader = [this] { return leader_.load(); };
    return std::make_unique<Forwarder>(std::move(o));
  }

  Forwarder::Call<int> Call(bool wait_for_leader = true) {
    Forwarder::Call<int> call;
    call.local = [](Forwarder::Reply<int> reply) { reply(7); };
    call.remote = [this](uint64_t to, int64_t timeout_ms, Forwarder::Reply<int> reply) {
      remote_.Call(to, timeout_ms, std::move(reply));
    };
    call.wait_for_leader = wait_for_leader;
    call.final_error = [](const absl::Status& st) {
      return base::IsError(st, ErrorKind::kLeaseNotFound);
    };
    return call;
  }

  // Starts a call and returns the future of its one result.
  std::future<absl::StatusOr<int>> Start(Forwarder* f, Forwarder::Call<int> call) {
    auto p = std::make_shared<std::promise<absl::StatusOr<int>>>();
    auto fut = p->get_future();
    auto count = calls_done_;
    f->CallLeader<int>(std::move(call), [p, count](absl::StatusOr<int> r) {
      count->fetch_add(1);
      p->set_value(std::move(r));
    });
    return fut;
  }

  static bool Ready(std::future<absl::StatusOr<int>>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

  std::atomic<uint64_t> leader_{0};
  FakeLeader remote_;
  std::shared_ptr<std::atomic<int>> calls_done_ = std::make_shared<std::atomic<int>>(0);
};

TEST_F(ForwarderTest, TheLeaderAnswersLocallyAtOnce) {
  auto f = Make(1000);
  leader_ = kSelf;
  auto r = Start(f.get(), Call());
  ASSERT_TRUE(Ready(r));
  EXPECT_EQ(*r.get(), 7);
  EXPECT_EQ(remote_.calls(), 0u);
}

TEST_F(ForwarderTest, AFollowerReturnsAtOnceAndCompletesWhenTheLeaderAnswers) {
  auto f = Make(60000);
  leader_ = kOther;
  auto r = Start(f.get(), Call());
  // CallLeader has returned; the caller's thread is free while the leader has not answered.
  ASSERT_EQ(remote_.calls(), 1u);
  EXPECT_FALSE(Ready(r));
  EXPECT_GT(remote_.timeout_of(0), 0);
  EXPECT_LE(remote_.timeout_of(0), 60000);
  remote_.Answer(0, 30);
  ASSERT_TRUE(Ready(r));
  EXPECT_EQ(*r.get(), 30);
}

TEST_F(ForwarderTest, WaitsForALeaderWithoutHoldingTheCaller) {
  auto f = Make(60000);
  auto r = Start(f.get(), Call());
  EXPECT_FALSE(Ready(r));  // no leader yet: a retry is scheduled, the caller goes on
  leader_ = kOther;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (remote_.calls() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(remote_.calls(), 1u);
  remote_.Answer(0, 9);
  EXPECT_EQ(*r.get(), 9);
}

TEST_F(ForwarderTest, RetryableErrorsAreRetriedFinalOnesReturned) {
  auto f = Make(60000);
  leader_ = kOther;
  auto r = Start(f.get(), Call());
  remote_.Answer(0, absl::UnavailableError("connection refused"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (remote_.calls() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(remote_.calls(), 2u);
  EXPECT_FALSE(Ready(r));
  remote_.Answer(1, base::MakeError(ErrorKind::kLeaseNotFound));
  auto result = r.get();
  EXPECT_TRUE(base::IsError(result.status(), ErrorKind::kLeaseNotFound)) << result.status();
}

TEST_F(ForwarderTest, GivesUpAfterTheLeaderWait) {
  auto f = Make(30);
  // Never a leader: "no leader".
  auto none = Start(f.get(), Call());
  EXPECT_TRUE(base::IsError(none.get().status(), ErrorKind::kNoLeader));
  // A leader that keeps failing: the call's timeout error.
  leader_ = kOther;
  Forwarder::Call<int> call = Call();
  call.remote = [](uint64_t, int64_t, Forwarder::Reply<int> reply) {
    reply(absl::UnavailableError("connection refused"));
  };
  call.on_timeout = ErrorKind::kTimeout;
  auto failing = Start(f.get(), std::move(call));
  EXPECT_TRUE(base::IsError(failing.get().status(), ErrorKind::kTimeout));
}

TEST_F(ForwarderTest, OneAttemptCallsDoNotWait) {
  auto f = Make(60000);
  auto none = Start(f.get(), Call(/*wait_for_leader=*/false));
  ASSERT_TRUE(Ready(none));
  EXPECT_TRUE(base::IsError(none.get().status(), ErrorKind::kNoLeader));
  leader_ = kOther;
  auto once = Start(f.get(), Call(/*wait_for_leader=*/false));
  remote_.Answer(0, absl::UnavailableError("connection refused"));
  ASSERT_TRUE(Ready(once));
  EXPECT_EQ(once.get().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ForwarderTest, StopAnswersPendingRetriesAndLaterCalls) {
  auto f = Make(60000);
  std::vector<std::future<absl::StatusOr<int>>> pending;
  for (int i = 0; i < 100; ++i) pending.push_back(Start(f.get(), Call()));
  f->Stop();
  for (auto& r : pending) {
    ASSERT_TRUE(Ready(r));
    EXPECT_TRUE(base::IsError(r.get().status(), ErrorKind::kStopped));
  }
  auto after = Start(f.get(), Call());
  ASSERT_TRUE(Ready(after));
  EXPECT_TRUE(base::IsError(after.get().status(), ErrorKind::kStopped));
  EXPECT_EQ(calls_done_->load(), 101);
}

}  // namespace
}  // namespace cairn::etcdserver
