// Maintenance API. Calls that concern one member take its endpoint ("host:port" as given in
// ClientOptions::endpoints or any other reachable member); an empty endpoint means "the
// endpoint the client currently uses". A call with an explicit endpoint never fails over.
// Thread-safe handle; blocking calls are fiber-aware.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/future.h"
#include "cairn/options.h"
#include "cairn/types.h"

namespace cairn {

namespace internal {
class Core;
}

struct StatusResponse {
  ResponseHeader header;
  std::string version;
  int64_t db_size = 0;
  int64_t db_size_in_use = 0;
  MemberId leader = 0;
  uint64_t raft_index = 0;
  uint64_t raft_term = 0;
  uint64_t raft_applied_index = 0;
  std::vector<std::string> errors;
  bool is_learner = false;
};

enum class AlarmType { kNone = 0, kNoSpace = 1, kCorrupt = 2 };
enum class AlarmAction { kGet = 0, kActivate = 1, kDeactivate = 2 };

struct AlarmMember {
  MemberId member_id = 0;
  AlarmType alarm = AlarmType::kNone;
};

struct AlarmResponse {
  ResponseHeader header;
  std::vector<AlarmMember> alarms;
};

struct HashResponse {
  ResponseHeader header;
  uint32_t hash = 0;
};

struct HashKvResponse {
  ResponseHeader header;
  uint32_t hash = 0;
  Revision compact_revision = 0;
};

struct SnapshotResult {
  uint64_t bytes = 0;      // bytes written, including the trailing 32-byte checksum
  std::string sha256_hex;  // the verified sha256 of the database part
};

struct EmptyResponse {
  ResponseHeader header;
};

class MaintenanceClient {
 public:
  explicit MaintenanceClient(std::shared_ptr<internal::Core> core) : core_(std::move(core)) {}

  Future<StatusResponse> StatusAsync(const std::string& endpoint = "",
                                     const CallOptions& call = {}) const;
  // member_id 0 with kGet lists the alarms of all members; kDeactivate disarms.
  Future<AlarmResponse> AlarmAsync(AlarmAction action, MemberId member_id = 0,
                                   AlarmType alarm = AlarmType::kNone,
                                   const CallOptions& call = {}) const;
  Future<EmptyResponse> DefragmentAsync(const std::string& endpoint = "",
                                        const CallOptions& call = {}) const;
  Future<HashResponse> HashAsync(const std::string& endpoint = "",
                                 const CallOptions& call = {}) const;
  Future<HashKvResponse> HashKvAsync(const std::string& endpoint = "", Revision revision = 0,
                                     const CallOptions& call = {}) const;
  // Asks the current leader (reached through `endpoint`) to hand leadership to `target`.
  Future<EmptyResponse> MoveLeaderAsync(MemberId target, const std::string& endpoint = "",
                                        const CallOptions& call = {}) const;

  absl::StatusOr<StatusResponse> Status(const std::string& endpoint = "",
                                        const CallOptions& call = {}) const {
    return StatusAsync(endpoint, call).Get();
  }
  absl::StatusOr<AlarmResponse> Alarm(AlarmAction action, MemberId member_id = 0,
                                      AlarmType alarm = AlarmType::kNone,
                                      const CallOptions& call = {}) const {
    return AlarmAsync(action, member_id, alarm, call).Get();
  }
  absl::StatusOr<EmptyResponse> Defragment(const std::string& endpoint = "",
                                           const CallOptions& call = {}) const {
    return DefragmentAsync(endpoint, call).Get();
  }
  absl::StatusOr<HashResponse> Hash(const std::string& endpoint = "",
                                    const CallOptions& call = {}) const {
    return HashAsync(endpoint, call).Get();
  }
  absl::StatusOr<HashKvResponse> HashKv(const std::string& endpoint = "", Revision revision = 0,
                                        const CallOptions& call = {}) const {
    return HashKvAsync(endpoint, revision, call).Get();
  }
  absl::StatusOr<EmptyResponse> MoveLeader(MemberId target, const std::string& endpoint = "",
                                           const CallOptions& call = {}) const {
    return MoveLeaderAsync(target, endpoint, call).Get();
  }

  // Streams a snapshot of the member's database into `path` (written to path + ".part", then
  // renamed). etcd appends a sha256 of the database to the stream; the file keeps it (so
  // etcdutl snapshot restore accepts the file) and it is verified: on mismatch the file is
  // removed and the status is DATA_LOSS (kChecksumMismatch). Blocking; fiber-aware. The call's
  // deadline (default: ClientOptions::default_timeout) bounds the whole transfer.
  absl::StatusOr<SnapshotResult> Snapshot(const std::string& path, const std::string& endpoint = "",
                                          const CallOptions& call = {}) const;

 private:
  std::shared_ptr<internal::Core> core_;
};

}  // namespace cairn
