// Cluster membership API. Thread-safe handle; blocking calls are fiber-aware.
// MemberList is retried like a read; the mutations follow the write retry rule.
#pragma once

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

struct Member {
  MemberId id = 0;
  std::string name;  // empty for a member that has not started yet
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool is_learner = false;
};

struct MemberListResponse {
  ResponseHeader header;
  std::vector<Member> members;
};

struct MemberAddResponse {
  ResponseHeader header;
  Member member;
  std::vector<Member> members;
};

struct MemberChangeResponse {  // remove / update / promote
  ResponseHeader header;
  std::vector<Member> members;
};

class ClusterClient {
 public:
  explicit ClusterClient(std::shared_ptr<internal::Core> core) : core_(std::move(core)) {}

  Future<MemberListResponse> MemberListAsync(const CallOptions& call = {}) const;
  Future<MemberAddResponse> MemberAddAsync(std::vector<std::string> peer_urls,
                                           bool is_learner = false,
                                           const CallOptions& call = {}) const;
  Future<MemberChangeResponse> MemberRemoveAsync(MemberId id, const CallOptions& call = {}) const;
  Future<MemberChangeResponse> MemberUpdateAsync(MemberId id, std::vector<std::string> peer_urls,
                                                 const CallOptions& call = {}) const;
  Future<MemberChangeResponse> MemberPromoteAsync(MemberId id, const CallOptions& call = {}) const;

  absl::StatusOr<MemberListResponse> MemberList(const CallOptions& call = {}) const {
    return MemberListAsync(call).Get();
  }
  absl::StatusOr<MemberAddResponse> MemberAdd(std::vector<std::string> peer_urls,
                                              bool is_learner = false,
                                              const CallOptions& call = {}) const {
    return MemberAddAsync(std::move(peer_urls), is_learner, call).Get();
  }
  absl::StatusOr<MemberChangeResponse> MemberRemove(MemberId id,
                                                    const CallOptions& call = {}) const {
    return MemberRemoveAsync(id, call).Get();
  }
  absl::StatusOr<MemberChangeResponse> MemberUpdate(MemberId id, std::vector<std::string> peer_urls,
                                                    const CallOptions& call = {}) const {
    return MemberUpdateAsync(id, std::move(peer_urls), call).Get();
  }
  absl::StatusOr<MemberChangeResponse> MemberPromote(MemberId id,
                                                     const CallOptions& call = {}) const {
    return MemberPromoteAsync(id, call).Get();
  }

 private:
  std::shared_ptr<internal::Core> core_;
};

}  // namespace cairn
