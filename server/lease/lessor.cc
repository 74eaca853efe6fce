#include "server/lease/lessor.h"

#include "server/base/errors.h"

namespace cairn::lease {

Lessor::Lessor(Clock clock, int64_t min_ttl_seconds)
    : clock_(std::move(clock)), min_ttl_seconds_(min_ttl_seconds) {}

void Lessor::Restore(const std::vector<mvcc::LeaseRecord>& leases) {
  absl::MutexLock l(&mu_);
  int64_t now = clock_();
  leases_.clear();
  for (const auto& r : leases) {
    int64_t left = r.remaining_ms > 0 ? r.remaining_ms : r.ttl_seconds * 1000;
    leases_[r.id] = State{r.ttl_seconds, now + left, r.remaining_ms > 0, false};
  }
}

void Lessor::OnGranted(const mvcc::LeaseRecord& r) {
  absl::MutexLock l(&mu_);
  leases_[r.id] = State{r.ttl_seconds, clock_() + r.ttl_seconds * 1000, false, false};
}

void Lessor::OnRevoked(int64_t id) {
  absl::MutexLock l(&mu_);
  leases_.erase(id);
}

void Lessor::OnCheckpointed(const mvcc::LeaseRecord& r) {
  absl::MutexLock l(&mu_);
  auto it = leases_.find(r.id);
  if (it != leases_.end()) it->second.checkpointed = r.remaining_ms > 0;
}

absl::StatusOr<int64_t> Lessor::Renew(int64_t id, bool* checkpointed) {
  absl::MutexLock l(&mu_);
  auto it = leases_.find(id);
  int64_t now = clock_();
  // An expired lease is being revoked: renewing it would resurrect a lease whose keys go away.
  if (it == leases_.end() || it->second.expiry_ms <= now) {
    return base::MakeError(base::ErrorKind::kLeaseNotFound);
  }
  it->second.expiry_ms = now + it->second.ttl_seconds * 1000;
  *checkpointed = it->second.checkpointed;
  return it->second.ttl_seconds;
}

std::optional<Lessor::Info> Lessor::Get(int64_t id) const {
  absl::MutexLock l(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  return Info{it->second.ttl_seconds, it->second.expiry_ms - clock_()};
}

std::vector<int64_t> Lessor::Ids() const {
  absl::MutexLock l(&mu_);
  std::vector<int64_t> ids;
  for (const auto& [id, s] : leases_) ids.push_back(id);
  return ids;
}

std::vector<int64_t> Lessor::Expired(size_t max) {
  absl::MutexLock l(&mu_);
  std::vector<int64_t> out;
  int64_t now = clock_();
  for (auto& [id, s] : leases_) {
    if (out.size() >= max) break;
    if (s.expiry_ms <= now && !s.revoking) {
      s.revoking = true;
      out.push_back(id);
    }
  }
  return out;
}

void Lessor::RevokeFailed(int64_t id) {
  absl::MutexLock l(&mu_);
  auto it = leases_.find(id);
  if (it != leases_.end()) it->second.revoking = false;
}

std::vector<std::pair<int64_t, int64_t>> Lessor::RemainingForCheckpoint() const {
  absl::MutexLock l(&mu_);
  std::vector<std::pair<int64_t, int64_t>> out;
  int64_t now = clock_();
  for (const auto& [id, s] : leases_) {
    if (!s.revoking) out.emplace_back(id, std::max<int64_t>(s.expiry_ms - now, 1));
  }
  return out;
}

}  // namespace cairn::lease
