// Lessor: the expiry timers of live leases. The persistent truth (which leases exist, their
// granted TTL and checkpointed remaining TTL) is in the store and changes only by applying log
// entries; the lessor mirrors it (OnGranted/OnRevoked/OnCheckpointed, called by the applier) and
// adds what is not replicated: when each lease expires on this member. Only the member that runs
// expiry (the single member now, the leader with Raft) acts on Expired().
//
// On Restore (start, or later a leader change) each lease expires after its checkpointed
// remaining TTL when there is one, else after its full TTL: checkpoints keep a restart or a
// leader change from granting every lease a fresh full TTL (an etcd pain point; on by default).
//
// Thread-safe. Time comes from the injected clock (milliseconds, monotonic).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/mvcc/kv_store.h"

namespace cairn::lease {

// etcd's limits: TTLs below the minimum are raised to it; above the maximum are refused.
inline constexpr int64_t kMaxLeaseTtlSeconds = 9000000000LL;

class Lessor {
 public:
  using Clock = std::function<int64_t()>;  // monotonic milliseconds
  Lessor(Clock clock, int64_t min_ttl_seconds);

  int64_t min_ttl_seconds() const { return min_ttl_seconds_; }

  // Applier: mirror the store.
  void Restore(const std::vector<mvcc::LeaseRecord>& leases) ABSL_LOCKS_EXCLUDED(mu_);
  void OnGranted(const mvcc::LeaseRecord& lease) ABSL_LOCKS_EXCLUDED(mu_);
  void OnRevoked(int64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  void OnCheckpointed(const mvcc::LeaseRecord& lease) ABSL_LOCKS_EXCLUDED(mu_);

  // KeepAlive: extends the lease to a full TTL from now. Returns the granted TTL, or
  // kLeaseNotFound for an unknown or already expired lease. *checkpointed is set when the lease
  // carries a checkpointed remaining TTL that the caller should reset (propose remaining 0).
  absl::StatusOr<int64_t> Renew(int64_t id, bool* checkpointed) ABSL_LOCKS_EXCLUDED(mu_);

  struct Info {
    int64_t ttl_seconds;   // granted
    int64_t remaining_ms;  // until expiry (may be <= 0 while a revoke is pending)
  };
  std::optional<Info> Get(int64_t id) const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<int64_t> Ids() const ABSL_LOCKS_EXCLUDED(mu_);

  // Leases past expiry not yet handed out by Expired (at most `max`); each is handed out once
  // until OnRevoked, or until RevokeFailed puts it back.
  std::vector<int64_t> Expired(size_t max) ABSL_LOCKS_EXCLUDED(mu_);
  void RevokeFailed(int64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Remaining TTLs of every lease, for a checkpoint proposal.
  std::vector<std::pair<int64_t, int64_t>> RemainingForCheckpoint() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct State {
    int64_t ttl_seconds;
    int64_t expiry_ms;
    bool checkpointed;
    bool revoking;
  };
  const Clock clock_;
  const int64_t min_ttl_seconds_;
  mutable absl::Mutex mu_;
  std::map<int64_t, State> leases_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cairn::lease
