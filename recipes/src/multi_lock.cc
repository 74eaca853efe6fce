#include "cairn/recipes/multi_lock.h"

#include <algorithm>

#include "src/internal.h"

namespace cairn::recipes {

MultiLock::MultiLock(std::shared_ptr<Session> session, std::vector<std::string> names)
    : names_(std::move(names)) {
  std::sort(names_.begin(), names_.end());
  names_.erase(std::unique(names_.begin(), names_.end()), names_.end());
  for (const auto& n : names_) mutexes_.push_back(std::make_unique<Mutex>(session, n));
}

absl::StatusOr<std::vector<Grant>> MultiLock::Lock(const CallOptions& call) {
  if (names_.empty()) return absl::InvalidArgumentError("multilock: no lock names");
  for (const auto& n : names_) {
    if (absl::Status st = internal::CheckName(n, "multilock"); !st.ok()) return st;
  }
  if (held_) return absl::FailedPreconditionError("multilock: already held");
  // One overall deadline for all the locks.
  CallOptions bounded = call;
  bounded.deadline = internal::DeadlineOf(call);
  bounded.timeout = std::chrono::milliseconds(0);
  std::vector<Grant> grants;
  for (size_t i = 0; i < mutexes_.size(); ++i) {
    auto g = mutexes_[i]->Lock(bounded);
    if (!g.ok()) {
      for (size_t j = 0; j < i; ++j) (void)mutexes_[j]->Unlock();
      return g.status();
    }
    grants.push_back(std::move(*g));
  }
  held_ = true;
  return grants;
}

Future<std::vector<Grant>> MultiLock::LockAsync(const CallOptions& call) {
  return RunAsync<std::vector<Grant>>(call, [this](const CallOptions& c) { return Lock(c); });
}

absl::Status MultiLock::Unlock(const CallOptions& call) {
  if (!held_) return absl::FailedPreconditionError("multilock: not held");
  absl::Status first;
  for (auto it = mutexes_.rbegin(); it != mutexes_.rend(); ++it) {
    if ((*it)->grant().has_value()) {
      absl::Status st = (*it)->Unlock(call);
      if (!st.ok() && first.ok()) first = st;
    }
  }
  held_ = false;
  return first;
}

std::vector<Compare> MultiLock::Guards() const {
  std::vector<Compare> out;
  for (const auto& m : mutexes_) {
    if (auto g = m->grant(); g.has_value()) out.push_back(g->Guard());
  }
  return out;
}

}  // namespace cairn::recipes
