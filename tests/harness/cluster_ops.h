// Helpers for multi-member cluster tests, over the plain etcd v3 gRPC API (so they work against
// etcd and cairn alike): bounded polling, leader discovery through Maintenance.Status, a digest of
// a member's KV content computed from a serializable Range, convergence checks, and thin wrappers
// of the Cluster and Maintenance RPCs.
//
//   auto leader = WaitForLeader(cluster);                 // index of the agreed leader
//   auto digest = WaitConverged(cluster, 60000);          // same revision + content everywhere
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "etcdserverpb/rpc.pb.h"
#include "tests/harness/server_process.h"

namespace grpc {
class Status;
}

namespace cairn::testing {

// Calls `pred` every `interval` until it returns true or `timeout` has passed; returns its last
// value. For "eventually" conditions instead of sleeps.
bool PollUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = std::chrono::milliseconds(20));

// grpc::Status -> absl::Status (same code, message prefixed with `what`).
absl::Status FromGrpc(const grpc::Status& status, const std::string& what);

// Maintenance.Status of the server at `endpoint`, with a deadline of timeout_ms.
absl::StatusOr<etcdserverpb::StatusResponse> MemberStatus(const std::string& endpoint,
                                                          int timeout_ms = 1000);

// header.member_id of a running member (from Maintenance.Status).
absl::StatusOr<uint64_t> MemberId(const ServerCluster& cluster, int member, int timeout_ms = 5000);

// Polls Maintenance.Status on every running, non-removed member not in `exclude` until one of
// them reports itself leader (header.member_id == leader) and every other member that answers
// reports the same leader. Returns that member's index; kDeadlineExceeded (with what each member
// said last) after timeout_ms. A member that does not answer (killed, paused) does not block.
absl::StatusOr<int> WaitForLeader(const ServerCluster& cluster, int timeout_ms = 30000,
                                  const std::vector<int>& exclude = {});

// Digest of a member's KV content: every key's key, value, create_revision, mod_revision,
// version and lease, in key order.
struct KvDigest {
  int64_t revision = 0;  // the revision read at (header.revision when read at 0)
  int64_t count = 0;     // number of keys
  uint64_t hash = 0;
  bool operator==(const KvDigest&) const = default;
};
std::string DescribeDigest(const KvDigest& digest);

// Serializable Range over the whole key space of `endpoint` at `revision` (0: the member's
// current revision), reduced to a KvDigest. Pages through the keys (limit `page_size`).
absl::StatusOr<KvDigest> KvContentDigest(const std::string& endpoint, int64_t revision = 0,
                                         int timeout_ms = 30000, int64_t page_size = 5000);

// Polls every running, non-removed member until all report the same current revision
// (serializable) and the same KvDigest at it. Returns the common digest; kDeadlineExceeded listing
// each member's last digest (or error) after timeout_ms. Call when no writes are in flight.
absl::StatusOr<KvDigest> WaitConverged(const ServerCluster& cluster, int timeout_ms = 60000);

// Cluster service wrappers (deadline timeout_ms), sent to `endpoint`.
absl::StatusOr<etcdserverpb::MemberListResponse> ListMembers(const std::string& endpoint,
                                                             int timeout_ms = 5000);
absl::StatusOr<etcdserverpb::MemberAddResponse> AddMember(const std::string& endpoint,
                                                          const std::string& peer_url, bool learner,
                                                          int timeout_ms = 10000);
absl::Status RemoveMember(const std::string& endpoint, uint64_t id, int timeout_ms = 10000);
absl::Status PromoteMember(const std::string& endpoint, uint64_t id, int timeout_ms = 10000);
// Maintenance.MoveLeader; etcd requires it to be sent to the current leader.
absl::Status MoveLeader(const std::string& endpoint, uint64_t target_id, int timeout_ms = 10000);

// KV wrappers.
absl::StatusOr<etcdserverpb::PutResponse> PutKey(const std::string& endpoint,
                                                 const std::string& key, const std::string& value,
                                                 int timeout_ms = 5000, int64_t lease = 0);
// Range of one key; linearizable unless `serializable`.
absl::StatusOr<etcdserverpb::RangeResponse> GetKey(const std::string& endpoint,
                                                   const std::string& key,
                                                   bool serializable = false,
                                                   int timeout_ms = 5000);

}  // namespace cairn::testing
