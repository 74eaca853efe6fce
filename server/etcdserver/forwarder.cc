#include "server/etcdserver/forwarder.h"

namespace cairn::etcdserver {

void Forwarder::Stop() {
  absl::MutexLock l(&mu_);
  stopped_ = true;
}

bool Forwarder::stopped() const {
  absl::MutexLock l(&mu_);
  return stopped_;
}

bool Forwarder::Pause() {
  absl::MutexLock l(&mu_);
  // Woken by Stop; otherwise the caller re-checks the leader after a heartbeat interval.
  mu_.AwaitWithTimeout(absl::Condition(&stopped_),
                       absl::Milliseconds(options_.heartbeat_interval_ms));
  return !stopped_;
}

}  // namespace cairn::etcdserver
