// The etcd error table, shared by the server and the client: every error etcd's API can answer,
// with etcd's gRPC code and exact message (api/v3rpc/rpctypes of etcd 3.4/3.5). Clients match on
// the messages, so they are copied byte for byte. This is the only copy of the table:
// server/base/errors.h produces statuses from it, client/src/errors.cc parses statuses back with
// it. Pinned row by row by tests/unit/common/etcd_errors_test.cc; docs/errors.md describes it.
//
// Header-only (constexpr data and lookups) so that the client library can compile it without
// depending on any server library; it depends on Abseil's status codes only.
// Thread-safe: constant data, pure functions.
#pragma once

#include <cstddef>
#include <iterator>
#include <string_view>

#include "absl/status/status.h"

namespace cairn::etcd {

// One enumerator per row, in table order. Names follow etcd's Go identifiers (ErrGRPCFutureRev is
// kFutureRev); the server's base::ErrorKind is this enum.
enum class EtcdError {
  kEmptyKey,
  kKeyNotFound,
  kValueProvided,
  kLeaseProvided,
  kTooManyOps,
  kDuplicateKey,
  kCompacted,
  kFutureRev,
  kNoSpace,
  kLeaseNotFound,
  kLeaseExist,
  kLeaseTTLTooLarge,
  kRequestTooLarge,
  kTooManyRequests,
  kNoLeader,
  kNotLeader,
  kLeaderChanged,
  kStopped,
  kTimeout,
  kTimeoutDueToLeaderFail,
  kUnhealthy,
  kCorrupt,
  kPermissionDenied,
  kMemberNotFound,
  kMemberExist,
  kPeerURLExist,
  kMemberBadURLs,
  kMemberNotLearner,
  kLearnerNotReady,
  kUserEmpty,
  kAuthFailed,
  kInvalidAuthToken,
  kAuthNotEnabled,
  kNotSupportedForLearner,
  kBadLeaderTransferee,
  kNotEnoughStartedMembers,
  kWatchCanceled,
  kTooManyLearners,
  kRootUserNotExist,
  kRootRoleNotExist,
  kUserAlreadyExist,
  kUserNotFound,
  kRoleAlreadyExist,
  kRoleNotFound,
  kRoleEmpty,
  kRoleNotGranted,
  kPermissionNotGranted,
  kInvalidAuthMgmt,
  kAuthOldRevision,
  kNotCapable,
  kTimeoutDueToConnectionLost,
};

struct EtcdErrorRow {
  EtcdError kind;
  // The error kind's stable lower_snake_case name: the client's ErrorKindName() of the kind this
  // row parses to, and the stem of the planned Python exception class ("lease_not_found" is
  // cairn.LeaseNotFoundError). Several rows may share a name (the "request timed out" variants
  // are all "timeout"); the first such row is the one the client produces.
  std::string_view name;
  absl::StatusCode code;
  std::string_view message;
};

// Short for the table below.
using StatusCode = absl::StatusCode;

inline constexpr EtcdErrorRow kEtcdErrors[] = {
    {EtcdError::kEmptyKey, "empty_key", StatusCode::kInvalidArgument,
     "etcdserver: key is not provided"},
    {EtcdError::kKeyNotFound, "key_not_found", StatusCode::kInvalidArgument,
     "etcdserver: key not found"},
    {EtcdError::kValueProvided, "value_provided", StatusCode::kInvalidArgument,
     "etcdserver: value is provided"},
    {EtcdError::kLeaseProvided, "lease_provided", StatusCode::kInvalidArgument,
     "etcdserver: lease is provided"},
    {EtcdError::kTooManyOps, "too_many_ops", StatusCode::kInvalidArgument,
     "etcdserver: too many operations in txn request"},
    {EtcdError::kDuplicateKey, "duplicate_key", StatusCode::kInvalidArgument,
     "etcdserver: duplicate key given in txn request"},
    {EtcdError::kCompacted, "compacted", StatusCode::kOutOfRange,
     "etcdserver: mvcc: required revision has been compacted"},
    {EtcdError::kFutureRev, "future_revision", StatusCode::kOutOfRange,
     "etcdserver: mvcc: required revision is a future revision"},
    {EtcdError::kNoSpace, "no_space", StatusCode::kResourceExhausted,
     "etcdserver: mvcc: database space exceeded"},
    {EtcdError::kLeaseNotFound, "lease_not_found", StatusCode::kNotFound,
     "etcdserver: requested lease not found"},
    {EtcdError::kLeaseExist, "lease_exists", StatusCode::kFailedPrecondition,
     "etcdserver: lease already exists"},
    {EtcdError::kLeaseTTLTooLarge, "lease_ttl_too_large", StatusCode::kOutOfRange,
     "etcdserver: too large lease TTL"},
    {EtcdError::kRequestTooLarge, "request_too_large", StatusCode::kInvalidArgument,
     "etcdserver: request is too large"},
    {EtcdError::kTooManyRequests, "too_many_requests", StatusCode::kResourceExhausted,
     "etcdserver: too many requests"},
    {EtcdError::kNoLeader, "no_leader", StatusCode::kUnavailable, "etcdserver: no leader"},
    {EtcdError::kNotLeader, "not_leader", StatusCode::kFailedPrecondition,
     "etcdserver: not leader"},
    {EtcdError::kLeaderChanged, "leader_changed", StatusCode::kUnavailable,
     "etcdserver: leader changed"},
    {EtcdError::kStopped, "stopped", StatusCode::kUnavailable, "etcdserver: server stopped"},
    {EtcdError::kTimeout, "timeout", StatusCode::kUnavailable, "etcdserver: request timed out"},
    {EtcdError::kTimeoutDueToLeaderFail, "timeout", StatusCode::kUnavailable,
     "etcdserver: request timed out, possibly due to previous leader failure"},
    {EtcdError::kUnhealthy, "unhealthy", StatusCode::kUnavailable, "etcdserver: unhealthy cluster"},
    {EtcdError::kCorrupt, "corrupt", StatusCode::kDataLoss, "etcdserver: corrupt cluster"},
    {EtcdError::kPermissionDenied, "permission_denied", StatusCode::kPermissionDenied,
     "etcdserver: permission denied"},
    {EtcdError::kMemberNotFound, "member_not_found", StatusCode::kNotFound,
     "etcdserver: member not found"},
    {EtcdError::kMemberExist, "member_exists", StatusCode::kFailedPrecondition,
     "etcdserver: member ID already exist"},
    {EtcdError::kPeerURLExist, "peer_url_exists", StatusCode::kFailedPrecondition,
     "etcdserver: Peer URLs already exists"},
    {EtcdError::kMemberBadURLs, "member_bad_urls", StatusCode::kInvalidArgument,
     "etcdserver: given member URLs are invalid"},
    {EtcdError::kMemberNotLearner, "member_not_learner", StatusCode::kFailedPrecondition,
     "etcdserver: can only promote a learner member"},
    {EtcdError::kLearnerNotReady, "learner_not_ready", StatusCode::kFailedPrecondition,
     "etcdserver: can only promote a learner member which is in sync with leader"},
    {EtcdError::kUserEmpty, "user_empty", StatusCode::kInvalidArgument,
     "etcdserver: user name is empty"},
    {EtcdError::kAuthFailed, "auth_failed", StatusCode::kInvalidArgument,
     "etcdserver: authentication failed, invalid user ID or password"},
    {EtcdError::kInvalidAuthToken, "invalid_auth_token", StatusCode::kUnauthenticated,
     "etcdserver: invalid auth token"},
    {EtcdError::kAuthNotEnabled, "auth_not_enabled", StatusCode::kFailedPrecondition,
     "etcdserver: authentication is not enabled"},
    {EtcdError::kNotSupportedForLearner, "not_supported_for_learner", StatusCode::kUnavailable,
     "etcdserver: rpc not supported for learner"},
    {EtcdError::kBadLeaderTransferee, "bad_leader_transferee", StatusCode::kFailedPrecondition,
     "etcdserver: bad leader transferee"},
    // etcd's rpctypes declares FAILED_PRECONDITION for this one, but etcd 3.4 has no mapping from
    // the server error to it and answers UNKNOWN with this message: so does Cairn.
    {EtcdError::kNotEnoughStartedMembers, "member_not_enough_started", StatusCode::kUnknown,
     "etcdserver: re-configuration failed due to not enough started members"},
    {EtcdError::kWatchCanceled, "watch_canceled", StatusCode::kCancelled,
     "etcdserver: watch canceled"},
    {EtcdError::kTooManyLearners, "too_many_learners", StatusCode::kFailedPrecondition,
     "etcdserver: too many learner members in cluster"},
    {EtcdError::kRootUserNotExist, "root_user_not_exist", StatusCode::kFailedPrecondition,
     "etcdserver: root user does not exist"},
    {EtcdError::kRootRoleNotExist, "root_role_not_exist", StatusCode::kFailedPrecondition,
     "etcdserver: root user does not have root role"},
    {EtcdError::kUserAlreadyExist, "user_already_exists", StatusCode::kFailedPrecondition,
     "etcdserver: user name already exists"},
    {EtcdError::kUserNotFound, "user_not_found", StatusCode::kFailedPrecondition,
     "etcdserver: user name not found"},
    {EtcdError::kRoleAlreadyExist, "role_already_exists", StatusCode::kFailedPrecondition,
     "etcdserver: role name already exists"},
    {EtcdError::kRoleNotFound, "role_not_found", StatusCode::kFailedPrecondition,
     "etcdserver: role name not found"},
    {EtcdError::kRoleEmpty, "role_empty", StatusCode::kInvalidArgument,
     "etcdserver: role name is empty"},
    {EtcdError::kRoleNotGranted, "role_not_granted", StatusCode::kFailedPrecondition,
     "etcdserver: role is not granted to the user"},
    {EtcdError::kPermissionNotGranted, "permission_not_granted", StatusCode::kFailedPrecondition,
     "etcdserver: permission is not granted to the role"},
    {EtcdError::kInvalidAuthMgmt, "invalid_auth_mgmt", StatusCode::kInvalidArgument,
     "etcdserver: invalid auth management"},
    {EtcdError::kAuthOldRevision, "auth_old_revision", StatusCode::kInvalidArgument,
     "etcdserver: revision of auth store is old"},
    {EtcdError::kNotCapable, "not_capable", StatusCode::kUnavailable, "etcdserver: not capable"},
    {EtcdError::kTimeoutDueToConnectionLost, "timeout", StatusCode::kUnavailable,
     "etcdserver: request timed out, possibly due to connection lost"},
};

inline constexpr size_t kEtcdErrorCount = std::size(kEtcdErrors);

// The row of `kind`.
constexpr const EtcdErrorRow& EtcdErrorRowOf(EtcdError kind) {
  return kEtcdErrors[static_cast<size_t>(kind)];
}

// The row whose message is exactly `message`, or nullptr.
constexpr const EtcdErrorRow* FindEtcdErrorByMessage(std::string_view message) {
  for (const EtcdErrorRow& row : kEtcdErrors) {
    if (row.message == message) return &row;
  }
  return nullptr;
}

// The first row named `name`, or nullptr.
constexpr const EtcdErrorRow* FindEtcdErrorByName(std::string_view name) {
  for (const EtcdErrorRow& row : kEtcdErrors) {
    if (row.name == name) return &row;
  }
  return nullptr;
}

namespace internal {

constexpr bool RowsInKindOrderWithUniqueMessages() {
  for (size_t i = 0; i < kEtcdErrorCount; ++i) {
    if (static_cast<size_t>(kEtcdErrors[i].kind) != i) return false;
    if (FindEtcdErrorByMessage(kEtcdErrors[i].message) != &kEtcdErrors[i]) return false;
  }
  return true;
}

}  // namespace internal

static_assert(internal::RowsInKindOrderWithUniqueMessages(),
              "kEtcdErrors: one row per EtcdError, in enum order, messages unique");
static_assert(kEtcdErrorCount == static_cast<size_t>(EtcdError::kTimeoutDueToConnectionLost) + 1,
              "kEtcdErrors: a row for every EtcdError");

}  // namespace cairn::etcd
