// The etcd error table: every error a client can see, with etcd's gRPC code and exact message
// (clients match on the strings). Lower layers return these as absl::Status values; server/api
// turns an absl::Status into a grpc::Status with the same code and message. Pinned row by row by
// tests/unit/base/errors_test.cc. Thread-safe (pure).
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace cairn::base {

enum class ErrorKind {
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
};

struct ErrorRow {
  ErrorKind kind;
  absl::StatusCode code;
  std::string_view message;
};

// The whole table, in ErrorKind order.
const ErrorRow* ErrorTable(size_t* size);

// The status for `kind`: etcd's code and message.
absl::Status MakeError(ErrorKind kind);

// True if `status` is exactly the table's row for `kind`.
bool IsError(const absl::Status& status, ErrorKind kind);

}  // namespace cairn::base
