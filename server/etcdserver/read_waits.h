// ReadWaits: linearizable reads whose read index is known, waiting for the applier to reach it,
// and the small thread pool that answers them (so a read never runs on the raft or applier
// thread, and the caller may read the store from its callback).
//
//   raft thread:    WaitFor(read_index, done)   -> done(OK) on a pool thread once applied
//   applier thread: OnApplied(applied_index)    -> releases every read at or below it
//   Stop():         every waiting read ends with `stopped`; the pool drains and joins
//
// Thread safety: thread-safe. Callbacks run on pool threads, never under the lock.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace cairn::etcdserver {

class ReadWaits {
 public:
  using Done = std::function<void(absl::Status)>;

  // Starts `threads` pool threads; `applied` is the applied index at start.
  ReadWaits(int threads, uint64_t applied);
  ~ReadWaits() { Stop(absl::CancelledError("stopped")); }

  // `done(OK)` once the applied index reaches `index` (at once, on a pool thread, if it has).
  void WaitFor(uint64_t index, Done done);
  void OnApplied(uint64_t applied);
  // Ends every waiting read with `status`, runs what is queued, joins the pool. Idempotent;
  // later WaitFor calls are answered with `status` on the caller's thread.
  void Stop(const absl::Status& status);

 private:
  void Loop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !ready_.empty(); }

  absl::Mutex mu_;
  uint64_t applied_ ABSL_GUARDED_BY(mu_);
  std::multimap<uint64_t, Done> waiting_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> ready_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status stop_status_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> pool_;
};

}  // namespace cairn::etcdserver
