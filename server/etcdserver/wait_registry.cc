#include "server/etcdserver/wait_registry.h"

namespace cairn::etcdserver {

void Waiter::Fail(const absl::Status& status) {
  if (done) {
    mvcc::ApplyResult r;
    r.status = status;
    done(std::move(r));
  }
  if (member_done) member_done(status);
}

bool WaitRegistry::Register(uint64_t id, int64_t deadline_ms, Waiter& w) {
  absl::MutexLock l(&mu_);
  if (waiters_.size() >= capacity_) return false;
  deadlines_.emplace_back(deadline_ms, id);
  waiters_[id] = std::move(w);
  return true;
}

std::optional<Waiter> WaitRegistry::Take(uint64_t id) {
  absl::MutexLock l(&mu_);
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return std::nullopt;
  Waiter w = std::move(it->second);
  waiters_.erase(it);
  return w;
}

bool WaitRegistry::Contains(uint64_t id) const {
  absl::MutexLock l(&mu_);
  return waiters_.count(id) > 0;
}

void WaitRegistry::Pin(uint64_t id) {
  absl::MutexLock l(&mu_);
  auto it = waiters_.find(id);
  if (it != waiters_.end()) it->second.pinned = true;
}

size_t WaitRegistry::size() const {
  absl::MutexLock l(&mu_);
  return waiters_.size();
}

std::vector<Waiter> WaitRegistry::Expire(int64_t now_ms) {
  std::vector<Waiter> expired;
  absl::MutexLock l(&mu_);
  while (!deadlines_.empty() && deadlines_.front().first <= now_ms) {
    auto it = waiters_.find(deadlines_.front().second);
    deadlines_.pop_front();
    if (it == waiters_.end()) continue;  // answered already
    if (it->second.pinned) continue;     // being applied: Take answers it
    expired.push_back(std::move(it->second));
    waiters_.erase(it);
  }
  return expired;
}

std::vector<Waiter> WaitRegistry::TakeAll() {
  std::vector<Waiter> all;
  absl::MutexLock l(&mu_);
  for (auto& [id, w] : waiters_) all.push_back(std::move(w));
  waiters_.clear();
  deadlines_.clear();
  return all;
}

}  // namespace cairn::etcdserver
