#include "server/etcdserver/read_waits.h"

#include "server/base/thread_name.h"

namespace cairn::etcdserver {

ReadWaits::ReadWaits(int threads, uint64_t applied) : applied_(applied) {
  for (int i = 0; i < threads; ++i)
    pool_.emplace_back([this] {
      base::SetThreadName("cairn-readwait");
      Loop();
    });
}

void ReadWaits::WaitFor(uint64_t index, Done done) {
  absl::Status stopped;
  {
    absl::MutexLock l(&mu_);
    if (!stopping_) {
      if (applied_ >= index) {
        ready_.push_back([d = std::move(done)] { d(absl::OkStatus()); });
      } else {
        waiting_.emplace(index, std::move(done));
      }
      return;
    }
    stopped = stop_status_;
  }
  done(stopped);
}

void ReadWaits::OnApplied(uint64_t applied) {
  absl::MutexLock l(&mu_);
  if (applied <= applied_) return;
  applied_ = applied;
  while (!waiting_.empty() && waiting_.begin()->first <= applied) {
    ready_.push_back([d = std::move(waiting_.begin()->second)] { d(absl::OkStatus()); });
    waiting_.erase(waiting_.begin());
  }
}

void ReadWaits::Stop(const absl::Status& status) {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    stopping_ = true;
    stop_status_ = status;
    for (auto& [index, d] : waiting_) {
      ready_.push_back([d = std::move(d), status] { d(status); });
    }
    waiting_.clear();
  }
  for (auto& t : pool_) t.join();
  pool_.clear();
}

void ReadWaits::Loop() {
  while (true) {
    std::function<void()> f;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &ReadWaits::HasWork));
      if (ready_.empty()) return;  // stopping and drained
      f = std::move(ready_.front());
      ready_.pop_front();
    }
    f();
  }
}

}  // namespace cairn::etcdserver
