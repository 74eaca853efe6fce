// Compactor: etcd's --auto-compaction-mode / --auto-compaction-retention (etcd 3.4 semantics,
// op-guide/maintenance.md "History compaction"; docs/maintenance.md "Auto-compaction").
//
//   periodic, retention P: the revision is sampled every min(P, 1h) / 10; the first compaction
//     happens once P has passed since the start (or since this member became leader), at the
//     oldest sample kept (about P ago); then every min(P, 1h), again at the sample about P old.
//   revision, retention N: every 5 minutes (Deps::revision_interval_ms), compacts at
//     (current revision - N) when that is positive and differs from the last one.
// Only the leader compacts, through raft (a Compaction entry, as a client's Compact). A compaction
// that fails is retried at the next sample.
//
// The logic is Step(now_ms), a pure function of the calls; Start() runs a thread that calls it
// every `tick_ms` with the member's clock. Thread contract: Step is called by one thread at a time
// (the compactor's own, or a test); Start/Stop are not concurrent with each other.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/base/clock.h"

namespace cairn::etcdserver {

enum class CompactionMode { kPeriodic, kRevision };

class Compactor {
 public:
  static constexpr int64_t kHourMs = 60 * 60 * 1000;
  static constexpr int64_t kRevisionIntervalMs = 5 * 60 * 1000;  // etcd's revision-mode period

  struct Deps {
    CompactionMode mode = CompactionMode::kPeriodic;
    // periodic: milliseconds; revision: a revision count. > 0.
    int64_t retention = 0;
    // revision: time between compactions (--auto-compaction-interval), > 0.
    int64_t revision_interval_ms = kRevisionIntervalMs;
    std::function<bool()> is_leader;
    std::function<int64_t()> revision;
    // Proposes a compaction at `revision` and waits for it; true if done (or already compacted).
    std::function<bool(int64_t)> compact;
  };
  explicit Compactor(Deps deps) : deps_(std::move(deps)) {}
  ~Compactor() { Stop(); }

  // One step at time `now_ms` (monotonic).
  void Step(int64_t now_ms);
  // How often Step must run to follow the schedule.
  int64_t TickMs() const;

  void Start(base::Clock* clock);
  void Stop();

 private:
  void StepPeriodic(int64_t now_ms);
  void StepRevision(int64_t now_ms);

  Deps deps_;
  bool leading_ = false;
  int64_t since_ms_ = 0;        // leader since, or last successful compaction
  bool first_done_ = false;     // the first compaction waits a whole retention period
  int64_t next_sample_ms_ = 0;  // periodic: next revision sample
  std::deque<int64_t> samples_;
  int64_t last_compacted_ = 0;  // revision mode
  std::thread thread_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace cairn::etcdserver
