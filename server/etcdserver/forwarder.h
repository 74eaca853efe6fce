// Forwarder: the one path from this member to the leader for calls only the leader answers
// (lease keepalive and TimeToLive, the leader's view of active members). Adding a forwarded call
// is one CallLeader with a local and a remote form.
//
// CallLeader runs `local()` when this member leads and `remote(leader)` otherwise. Without a
// leader, or while `remote` fails with an error `final_error` does not accept, it retries every
// heartbeat interval until `leader_wait_ms` has passed; then it fails with "no leader" if no
// leader answered at all, else with `on_timeout`; with "server stopped" once Stop() was called.
// It blocks the calling thread (never the raft or applier thread) for at most leader_wait_ms
// plus one remote call.
//
// Thread safety: thread-safe.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
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
  explicit Forwarder(Options options) : options_(std::move(options)) {}

  template <typename T>
  absl::StatusOr<T> CallLeader(const std::function<absl::StatusOr<T>()>& local,
                               const std::function<absl::StatusOr<T>(uint64_t)>& remote,
                               const std::function<bool(const absl::Status&)>& final_error,
                               base::ErrorKind on_timeout);

  // One attempt: `local()` on the leader, `remote(leader)` on a follower, "no leader" without one.
  template <typename T>
  absl::StatusOr<T> CallLeaderOnce(const std::function<absl::StatusOr<T>()>& local,
                                   const std::function<absl::StatusOr<T>(uint64_t)>& remote) {
    uint64_t leader = options_.leader();
    if (leader == options_.member_id) return local();
    if (leader == 0 || !options_.can_forward) return base::MakeError(base::ErrorKind::kNoLeader);
    return remote(leader);
  }

  // Ends every wait at once; later calls fail with "server stopped". Idempotent.
  void Stop();
  bool stopped() const;

 private:
  // Waits one heartbeat interval or until Stop; false once stopped.
  bool Pause();

  const Options options_;
  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

template <typename T>
absl::StatusOr<T> Forwarder::CallLeader(const std::function<absl::StatusOr<T>()>& local,
                                        const std::function<absl::StatusOr<T>(uint64_t)>& remote,
                                        const std::function<bool(const absl::Status&)>& final_error,
                                        base::ErrorKind on_timeout) {
  const int64_t deadline = options_.clock->NowMs() + options_.leader_wait_ms;
  absl::Status last = base::MakeError(base::ErrorKind::kNoLeader);
  while (true) {
    if (stopped()) return base::MakeError(base::ErrorKind::kStopped);
    uint64_t leader = options_.leader();
    if (leader == options_.member_id) return local();
    if (leader != 0 && options_.can_forward) {
      absl::StatusOr<T> r = remote(leader);
      if (r.ok() || final_error(r.status())) return r;
      last = r.status();
    }
    if (options_.clock->NowMs() >= deadline) {
      return base::IsError(last, base::ErrorKind::kNoLeader) ? last : base::MakeError(on_timeout);
    }
    if (!Pause()) return base::MakeError(base::ErrorKind::kStopped);
  }
}

}  // namespace cairn::etcdserver
