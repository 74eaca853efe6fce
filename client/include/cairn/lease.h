// Lease API: grant/revoke/time-to-live/list, and keepalive managed by the client.
//
// KeepAlive() hands a lease to the client's keeper: it sends a keepalive every TTL/3 on a shared
// stream, moves to another endpoint when the stream breaks, and reports loss exactly once:
//  - the server answers that the lease does not exist (expired or revoked): LEASE_NOT_FOUND;
//  - no keepalive was confirmed before the last confirmed TTL ran out: the lease may have
//    expired (kLeaseLost, DEADLINE_EXCEEDED code).
// A brief outage shorter than the remaining TTL is not a loss. Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/future.h"
#include "cairn/options.h"
#include "cairn/types.h"

namespace cairn {

namespace internal {
class Core;
class LeaseKeeper;
struct KeptLease;
}  // namespace internal

struct LeaseGrantResponse {
  ResponseHeader header;
  LeaseId id = 0;
  int64_t ttl_seconds = 0;
};

struct LeaseRevokeResponse {
  ResponseHeader header;
};

struct LeaseKeepAliveResponse {
  ResponseHeader header;
  LeaseId id = 0;
  int64_t ttl_seconds = 0;  // <= 0: the lease does not exist any more
};

struct LeaseTimeToLiveResponse {
  ResponseHeader header;
  LeaseId id = 0;
  int64_t ttl_seconds = 0;  // -1: expired / not found
  int64_t granted_ttl_seconds = 0;
  std::vector<std::string> keys;  // with keys = true; without the client's key_prefix
};

struct LeaseLeasesResponse {
  ResponseHeader header;
  std::vector<LeaseId> ids;
};

struct KeepAliveOptions {
  // Called once when the lease is lost (see file comment), on the keeper thread.
  std::function<void(const absl::Status&)> on_lost;
  // Called after every confirmed keepalive with the new TTL, on the keeper thread.
  std::function<void(int64_t ttl_seconds)> on_renewed;
};

// Handle of a kept-alive lease. Destroying it (or Stop()) stops the keepalives; the lease is
// not revoked (it expires after its TTL unless revoked).
class LeaseKeepAlive {
 public:
  ~LeaseKeepAlive();
  LeaseKeepAlive(const LeaseKeepAlive&) = delete;
  LeaseKeepAlive& operator=(const LeaseKeepAlive&) = delete;

  LeaseId id() const;
  void Stop();
  // OK while the lease is kept; the loss reason afterwards.
  absl::Status status() const;
  bool lost() const { return !status().ok(); }
  // Waits until the lease is lost or `deadline`; returns status().
  absl::Status WaitLost(Clock::time_point deadline) const;
  // The TTL of the last confirmed keepalive (0 before the first).
  int64_t ttl_seconds() const;

 private:
  friend class internal::LeaseKeeper;
  LeaseKeepAlive(std::shared_ptr<internal::LeaseKeeper> k, std::shared_ptr<internal::KeptLease> l);
  std::shared_ptr<internal::LeaseKeeper> keeper_;
  std::shared_ptr<internal::KeptLease> lease_;
};

class LeaseClient {
 public:
  explicit LeaseClient(std::shared_ptr<internal::Core> core) : core_(std::move(core)) {}

  // id = 0: the server chooses the id.
  Future<LeaseGrantResponse> GrantAsync(int64_t ttl_seconds, LeaseId id = 0,
                                        const CallOptions& call = {}) const;
  Future<LeaseRevokeResponse> RevokeAsync(LeaseId id, const CallOptions& call = {}) const;
  Future<LeaseTimeToLiveResponse> TimeToLiveAsync(LeaseId id, bool keys = false,
                                                  const CallOptions& call = {}) const;
  Future<LeaseLeasesResponse> LeasesAsync(const CallOptions& call = {}) const;
  // One keepalive round trip (no management).
  Future<LeaseKeepAliveResponse> KeepAliveOnceAsync(LeaseId id, const CallOptions& call = {}) const;

  absl::StatusOr<LeaseGrantResponse> Grant(int64_t ttl_seconds, LeaseId id = 0,
                                           const CallOptions& call = {}) const {
    return GrantAsync(ttl_seconds, id, call).Get();
  }
  absl::StatusOr<LeaseRevokeResponse> Revoke(LeaseId id, const CallOptions& call = {}) const {
    return RevokeAsync(id, call).Get();
  }
  absl::StatusOr<LeaseTimeToLiveResponse> TimeToLive(LeaseId id, bool keys = false,
                                                     const CallOptions& call = {}) const {
    return TimeToLiveAsync(id, keys, call).Get();
  }
  absl::StatusOr<LeaseLeasesResponse> Leases(const CallOptions& call = {}) const {
    return LeasesAsync(call).Get();
  }
  absl::StatusOr<LeaseKeepAliveResponse> KeepAliveOnce(LeaseId id,
                                                       const CallOptions& call = {}) const {
    return KeepAliveOnceAsync(id, call).Get();
  }

  // Keeps `id` alive until the handle is destroyed or the lease is lost.
  std::unique_ptr<LeaseKeepAlive> KeepAlive(LeaseId id, KeepAliveOptions opts = {}) const;

 private:
  std::shared_ptr<internal::Core> core_;
};

}  // namespace cairn
