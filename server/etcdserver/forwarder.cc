#include "server/etcdserver/forwarder.h"

#include <vector>

#include "server/base/thread_name.h"

namespace cairn::etcdserver {

Forwarder::Forwarder(Options options) : options_(std::move(options)) {
  timer_thread_ = std::thread([this] {
    base::SetThreadName("cairn-forward");
    TimerLoop();
  });
}

void Forwarder::Stop() {
  std::multimap<int64_t, std::function<void(bool)>> pending;
  {
    absl::MutexLock l(&mu_);
    stopped_ = true;
    pending.swap(timers_);
    cv_.Signal();
  }
  if (timer_thread_.joinable()) timer_thread_.join();
  for (auto& [due, fn] : pending) fn(false);
}

bool Forwarder::stopped() const {
  absl::MutexLock l(&mu_);
  return stopped_;
}

void Forwarder::After(int64_t delay_ms, std::function<void(bool)> fn) {
  {
    absl::MutexLock l(&mu_);
    if (!stopped_) {
      timers_.emplace(NowMs() + delay_ms, std::move(fn));
      cv_.Signal();
      return;
    }
  }
  fn(false);
}

void Forwarder::TimerLoop() {
  absl::MutexLock l(&mu_);
  while (!stopped_) {
    if (timers_.empty()) {
      cv_.Wait(&mu_);  // signalled by After and Stop
      continue;
    }
    const int64_t wait_ms = timers_.begin()->first - NowMs();
    if (wait_ms > 0) {
      // Woken early by a new timer or by Stop; the loop re-reads the earliest due time.
      cv_.WaitWithTimeout(&mu_, absl::Milliseconds(wait_ms));
      continue;
    }
    std::vector<std::function<void(bool)>> due;
    const int64_t now = NowMs();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      due.push_back(std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
    mu_.Unlock();
    for (auto& fn : due) fn(true);
    mu_.Lock();
  }
}

}  // namespace cairn::etcdserver
