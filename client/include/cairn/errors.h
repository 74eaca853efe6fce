// Typed errors of the Cairn client.
//
// Every failed call returns an absl::Status whose code is the gRPC code the server sent (Abseil's
// codes equal gRPC's) and whose message is the server's message, e.g.
// "etcdserver: mvcc: required revision has been compacted". ErrorKindOf() maps such a status to
// an ErrorKind by etcd's exact wire messages (the strings of etcd's rpctypes package, kept in the
// one table the server uses too: common/etcd_errors.h, docs/errors.md), so callers can branch on
// the kind instead of matching strings. Client-side conditions (deadline,
// cancellation, checksum mismatch, lease lost) map to kinds too.
//
// Thread-safe: all functions are pure.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace cairn {

enum class ErrorKind {
  kOk = 0,
  kUnknown,           // any status not recognised below
  kCanceled,          // canceled by the caller (CancelToken / Future::Cancel)
  kDeadlineExceeded,  // the call's deadline passed
  kUnavailable,       // no endpoint reachable / connection lost (transport level)
  kInvalidArgument,   // client-side argument check
  // KV
  kEmptyKey,         // "etcdserver: key is not provided"
  kKeyNotFound,      // "etcdserver: key not found"
  kValueProvided,    // "etcdserver: value is provided"
  kLeaseProvided,    // "etcdserver: lease is provided"
  kTooManyOps,       // "etcdserver: too many operations in txn request"
  kDuplicateKey,     // "etcdserver: duplicate key given in txn request"
  kCompacted,        // "etcdserver: mvcc: required revision has been compacted"
  kFutureRevision,   // "etcdserver: mvcc: required revision is a future revision"
  kNoSpace,          // "etcdserver: mvcc: database space exceeded"
  kRequestTooLarge,  // "etcdserver: request is too large"
  kTooManyRequests,  // "etcdserver: too many requests"
  // Lease
  kLeaseNotFound,     // "etcdserver: requested lease not found"
  kLeaseExists,       // "etcdserver: lease already exists"
  kLeaseTtlTooLarge,  // "etcdserver: too large lease TTL"
  kLeaseLost,         // client-side: a kept-alive lease expired or could not be renewed in time
  // Watch
  kWatchCanceled,  // "etcdserver: watch canceled" or a server-side cancel
  // Cluster
  kMemberExists,            // "etcdserver: member ID already exist"
  kPeerUrlExists,           // "etcdserver: Peer URLs already exists"
  kMemberNotEnoughStarted,  // "etcdserver: re-configuration failed due to not enough started
                            // members" (UNKNOWN, as etcd 3.4 answers it)
  kMemberBadUrls,           // "etcdserver: given member URLs are invalid"
  kMemberNotFound,          // "etcdserver: member not found"
  kMemberNotLearner,        // "etcdserver: can only promote a learner member"
  kLearnerNotReady,  // "etcdserver: can only promote a learner member which is in sync with leader"
  kTooManyLearners,  // "etcdserver: too many learner members in cluster"
  kNotSupportedForLearner,
  kBadLeaderTransferee,
  // Auth
  kRootUserNotExist,
  kRootRoleNotExist,
  kUserAlreadyExists,  // "etcdserver: user name already exists"
  kUserEmpty,          // "etcdserver: user name is empty"
  kUserNotFound,       // "etcdserver: user name not found"
  kRoleAlreadyExists,  // "etcdserver: role name already exists"
  kRoleNotFound,       // "etcdserver: role name not found"
  kRoleEmpty,          // "etcdserver: role name is empty"
  kAuthFailed,         // "etcdserver: authentication failed, invalid user ID or password"
  kPermissionDenied,   // "etcdserver: permission denied"
  kRoleNotGranted,     // "etcdserver: role is not granted to the user"
  kPermissionNotGranted,
  kAuthNotEnabled,    // "etcdserver: authentication is not enabled"
  kInvalidAuthToken,  // "etcdserver: invalid auth token"
  kInvalidAuthMgmt,   // "etcdserver: invalid auth management"
  kAuthOldRevision,   // "etcdserver: revision of auth store is old"
  // Server state
  kNoLeader,       // "etcdserver: no leader"
  kNotLeader,      // "etcdserver: not leader"
  kLeaderChanged,  // "etcdserver: leader changed"
  kNotCapable,     // "etcdserver: not capable"
  kStopped,        // "etcdserver: server stopped"
  kTimeout,        // "etcdserver: request timed out" (and its "possibly due to ..." variants)
  kUnhealthy,      // "etcdserver: unhealthy cluster"
  kCorrupt,        // "etcdserver: corrupt cluster"
  // Maintenance
  kChecksumMismatch,  // client-side: snapshot sha256 did not match
  // New kinds go above this line: kChecksumMismatch stays the last one.
};

// The kind of `status`; kOk for an OK status. Server errors are recognised by etcd's exact
// message (with or without a leading "rpc error: code = ... desc = " wrapper); unrecognised
// errors map by code (DEADLINE_EXCEEDED, CANCELLED, UNAVAILABLE, INVALID_ARGUMENT) or to kUnknown.
ErrorKind ErrorKindOf(const absl::Status& status);

// A stable lower_snake_case name, e.g. "compacted", "lease_not_found".
std::string_view ErrorKindName(ErrorKind kind);

// The status etcd would send for `kind` (code and exact message); OkStatus for kOk. Used by
// tests and fakes; kinds without a wire form get a message naming the kind.
absl::Status MakeError(ErrorKind kind, std::string_view detail = {});

}  // namespace cairn
