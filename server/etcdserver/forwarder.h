// Forwarder: the one path from this member to the leader for calls only the leader answers
// (lease keepalive and TimeToLive, a learner's promotion, the leader's view of active members).
// Every forwarded call is one Call: a local form for when this member leads and a remote form
// (an asynchronous transport call) for when it follows. Nothing here blocks a thread.
//
// CallLeader runs `local(reply)` on the calling thread when this member leads, and `remote(leader,
// time left, reply)` otherwise. With `wait_for_leader`, while there is no leader or `remote`
// fails with an error `final_error` does not accept, it tries again every heartbeat interval (on
// the forwarder's timer thread) until `leader_wait_ms` has passed; then it fails with "no leader"
// if no leader answered at all, else with `on_timeout`. Without `wait_for_leader` it makes one
// attempt ("no leader" without one). After Stop, and for retries pending at Stop, `done` gets
// "server stopped".
//
// `done` is called exactly once: on the calling thread, a transport callback thread or the
// forwarder's timer thread. It must not block.
//
// Thread safety: thread-safe. The Forwarder must outlive every transport call it started (the
// member destroys the transport, which waits for its calls, before the Forwarder).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/base/clock.h"
#include "server/base/errors.h"

namespace cairn::etcdserver {

class Forwarder {
 public:
  struct Options {
    uint64_t member_id = 0;
    int64_t heartbeat_interval_ms = 100;
    int64_t leader_wait_ms = 3000;
    base::Clock* clock = base::Clock::Real();
    std::function<uint64_t()> leader;  // the leader this member knows (0: none)
    bool can_forward = true;           // false without a peer transport
  };

  template <typename T>
  using Reply = std::function<void(absl::StatusOr<T>)>;

  // One forwarded call.
  template <typename T>
  struct Call {
    // The answer when this member leads, given to `reply` exactly once (at once, or later from
    // another thread: e.g. once the applier has caught up). Must not block.
    std::function<void(Reply<T> reply)> local;
    // Asks `leader` with at most `timeout_ms` to spend; calls `reply` exactly once.
    std::function<void(uint64_t leader, int64_t timeout_ms, Reply<T> reply)> remote;
    // Keep trying (no leader, a retryable error) until the leader wait has passed.
    bool wait_for_leader = true;
    // Errors of `remote` that end the call at once (the others are retried).
    std::function<bool(const absl::Status&)> final_error = [](const absl::Status&) {
      return false;
    };
    // The error when the leader wait passes after a leader was reached but never answered.
    base::ErrorKind on_timeout = base::ErrorKind::kTimeout;
  };

  explicit Forwarder(Options options);
  ~Forwarder() { Stop(); }

  template <typename T>
  void CallLeader(Call<T> call, Reply<T> done);

  // Ends every pending retry at once ("server stopped"); later calls fail likewise. Joins the
  // timer thread. Idempotent.
  void Stop();
  bool stopped() const;

 private:
  template <typename T>
  struct Pending {
    Call<T> call;
    Reply<T> done;
    int64_t deadline_ms = 0;
    absl::Status last;  // the last error of `remote`, or "no leader"
  };

  template <typename T>
  void Try(std::shared_ptr<Pending<T>> p);
  template <typename T>
  void RetryLater(std::shared_ptr<Pending<T>> p);

  // Runs `fn(true)` on the timer thread after `delay_ms`, or `fn(false)` at Stop (at once when
  // already stopped).
  void After(int64_t delay_ms, std::function<void(bool)> fn) ABSL_LOCKS_EXCLUDED(mu_);
  void TimerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  int64_t NowMs() const { return options_.clock->NowMs(); }

  const Options options_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // a timer was added, or Stop
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Pending retries by due time (clock ms).
  std::multimap<int64_t, std::function<void(bool)>> timers_ ABSL_GUARDED_BY(mu_);
  std::thread timer_thread_;
};

template <typename T>
void Forwarder::CallLeader(Call<T> call, Reply<T> done) {
  auto p = std::make_shared<Pending<T>>();
  p->call = std::move(call);
  p->done = std::move(done);
  p->deadline_ms = NowMs() + options_.leader_wait_ms;
  p->last = base::MakeError(base::ErrorKind::kNoLeader);
  Try(std::move(p));
}

template <typename T>
void Forwarder::Try(std::shared_ptr<Pending<T>> p) {
  if (stopped()) return p->done(base::MakeError(base::ErrorKind::kStopped));
  const uint64_t leader = options_.leader();
  if (leader == options_.member_id) return p->call.local(std::move(p->done));
  if (leader == 0 || !options_.can_forward) {
    if (!p->call.wait_for_leader) return p->done(base::MakeError(base::ErrorKind::kNoLeader));
    return RetryLater(std::move(p));
  }
  const int64_t left = std::max<int64_t>(1, p->deadline_ms - NowMs());
  p->call.remote(leader, left, [this, p](absl::StatusOr<T> r) {
    if (r.ok() || !p->call.wait_for_leader || p->call.final_error(r.status())) {
      return p->done(std::move(r));
    }
    p->last = r.status();
    RetryLater(p);
  });
}

template <typename T>
void Forwarder::RetryLater(std::shared_ptr<Pending<T>> p) {
  if (NowMs() >= p->deadline_ms) {
    const bool no_leader = base::IsError(p->last, base::ErrorKind::kNoLeader);
    return p->done(no_leader ? p->last : base::MakeError(p->call.on_timeout));
  }
  After(options_.heartbeat_interval_ms, [this, p](bool run) {
    if (!run) return p->done(base::MakeError(base::ErrorKind::kStopped));
    Try(p);
  });
}

}  // namespace cairn::etcdserver
