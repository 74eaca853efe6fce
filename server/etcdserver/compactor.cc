#include "server/etcdserver/compactor.h"

#include <algorithm>

#include "server/base/logging.h"
#include "server/base/thread_name.h"

namespace cairn::etcdserver {

namespace {
// etcd's periodic compactor samples the revision 10 times per compaction interval.
constexpr int64_t kRetentionWindows = 10;
}  // namespace

int64_t Compactor::TickMs() const {
  if (deps_.mode == CompactionMode::kRevision) {
    return std::max<int64_t>(1, std::min<int64_t>(deps_.revision_interval_ms / 5, 1000));
  }
  return std::max<int64_t>(1, std::min(deps_.retention, kHourMs) / kRetentionWindows);
}

void Compactor::Step(int64_t now_ms) {
  const bool leader = deps_.is_leader();
  if (leader && !leading_) {
    // A new leader starts the schedule afresh (etcd resumes its paused compactor the same way:
    // its samples keep going, but it compacts only once a whole period has passed).
    since_ms_ = now_ms;
    next_sample_ms_ = now_ms;
    first_done_ = false;
    samples_.clear();
  }
  leading_ = leader;
  if (!leader) return;
  if (deps_.mode == CompactionMode::kPeriodic) {
    StepPeriodic(now_ms);
  } else {
    StepRevision(now_ms);
  }
}

void Compactor::StepPeriodic(int64_t now_ms) {
  const int64_t period = deps_.retention;
  const int64_t interval = std::min(period, kHourMs);
  const int64_t retry = std::max<int64_t>(1, interval / kRetentionWindows);
  const size_t keep = static_cast<size_t>(period / retry + 1);
  if (now_ms < next_sample_ms_) return;
  next_sample_ms_ = now_ms + retry;
  samples_.push_back(deps_.revision());
  while (samples_.size() > keep) samples_.pop_front();
  const int64_t wait = first_done_ ? interval : period;
  if (now_ms - since_ms_ < wait) return;
  const int64_t rev = samples_.front();
  if (rev <= 1) return;  // nothing written yet
  CAIRN_LOG(kInfo, "compactor") << "auto-compaction (periodic) at revision " << rev;
  if (deps_.compact(rev)) {
    since_ms_ = now_ms;
    first_done_ = true;
  }
}

void Compactor::StepRevision(int64_t now_ms) {
  if (now_ms - since_ms_ < deps_.revision_interval_ms) return;
  since_ms_ = now_ms;
  const int64_t rev = deps_.revision() - deps_.retention;
  if (rev <= 0 || rev == last_compacted_) return;
  CAIRN_LOG(kInfo, "compactor") << "auto-compaction (revision) at revision " << rev;
  if (deps_.compact(rev)) last_compacted_ = rev;
}

void Compactor::Start(base::Clock* clock) {
  thread_ = std::thread([this, clock] {
    base::SetThreadName("cairn-autocomp");
    const int64_t tick = TickMs();
    while (true) {
      {
        absl::MutexLock l(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(tick))) return;
      }
      Step(clock->NowMs());
    }
  });
}

void Compactor::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace cairn::etcdserver
