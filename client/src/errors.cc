#include "cairn/errors.h"

#include <string>

namespace cairn {
namespace {

struct WireError {
  ErrorKind kind;
  absl::StatusCode code;
  const char* message;
};

// etcd's rpctypes table (api/v3rpc/rpctypes/error.go): code and exact message of each error.
constexpr WireError kWireErrors[] = {
    {ErrorKind::kEmptyKey, absl::StatusCode::kInvalidArgument, "etcdserver: key is not provided"},
    {ErrorKind::kKeyNotFound, absl::StatusCode::kInvalidArgument, "etcdserver: key not found"},
    {ErrorKind::kValueProvided, absl::StatusCode::kInvalidArgument,
     "etcdserver: value is provided"},
    {ErrorKind::kLeaseProvided, absl::StatusCode::kInvalidArgument,
     "etcdserver: lease is provided"},
    {ErrorKind::kTooManyOps, absl::StatusCode::kInvalidArgument,
     "etcdserver: too many operations in txn request"},
    {ErrorKind::kDuplicateKey, absl::StatusCode::kInvalidArgument,
     "etcdserver: duplicate key given in txn request"},
    {ErrorKind::kCompacted, absl::StatusCode::kOutOfRange,
     "etcdserver: mvcc: required revision has been compacted"},
    {ErrorKind::kFutureRevision, absl::StatusCode::kOutOfRange,
     "etcdserver: mvcc: required revision is a future revision"},
    {ErrorKind::kNoSpace, absl::StatusCode::kResourceExhausted,
     "etcdserver: mvcc: database space exceeded"},
    {ErrorKind::kLeaseNotFound, absl::StatusCode::kNotFound,
     "etcdserver: requested lease not found"},
    {ErrorKind::kLeaseExists, absl::StatusCode::kFailedPrecondition,
     "etcdserver: lease already exists"},
    {ErrorKind::kLeaseTtlTooLarge, absl::StatusCode::kOutOfRange,
     "etcdserver: too large lease TTL"},
    {ErrorKind::kWatchCanceled, absl::StatusCode::kCancelled, "etcdserver: watch canceled"},
    {ErrorKind::kMemberExists, absl::StatusCode::kFailedPrecondition,
     "etcdserver: member ID already exist"},
    {ErrorKind::kPeerUrlExists, absl::StatusCode::kFailedPrecondition,
     "etcdserver: Peer URLs already exists"},
    {ErrorKind::kMemberNotEnoughStarted, absl::StatusCode::kFailedPrecondition,
     "etcdserver: re-configuration failed due to not enough started members"},
    {ErrorKind::kMemberBadUrls, absl::StatusCode::kInvalidArgument,
     "etcdserver: given member URLs are invalid"},
    {ErrorKind::kMemberNotFound, absl::StatusCode::kNotFound, "etcdserver: member not found"},
    {ErrorKind::kMemberNotLearner, absl::StatusCode::kFailedPrecondition,
     "etcdserver: can only promote a learner member"},
    {ErrorKind::kLearnerNotReady, absl::StatusCode::kFailedPrecondition,
     "etcdserver: can only promote a learner member which is in sync with leader"},
    {ErrorKind::kTooManyLearners, absl::StatusCode::kFailedPrecondition,
     "etcdserver: too many learner members in cluster"},
    {ErrorKind::kRequestTooLarge, absl::StatusCode::kInvalidArgument,
     "etcdserver: request is too large"},
    {ErrorKind::kTooManyRequests, absl::StatusCode::kResourceExhausted,
     "etcdserver: too many requests"},
    {ErrorKind::kRootUserNotExist, absl::StatusCode::kFailedPrecondition,
     "etcdserver: root user does not exist"},
    {ErrorKind::kRootRoleNotExist, absl::StatusCode::kFailedPrecondition,
     "etcdserver: root user does not have root role"},
    {ErrorKind::kUserAlreadyExists, absl::StatusCode::kFailedPrecondition,
     "etcdserver: user name already exists"},
    {ErrorKind::kUserEmpty, absl::StatusCode::kInvalidArgument, "etcdserver: user name is empty"},
    {ErrorKind::kUserNotFound, absl::StatusCode::kFailedPrecondition,
     "etcdserver: user name not found"},
    {ErrorKind::kRoleAlreadyExists, absl::StatusCode::kFailedPrecondition,
     "etcdserver: role name already exists"},
    {ErrorKind::kRoleNotFound, absl::StatusCode::kFailedPrecondition,
     "etcdserver: role name not found"},
    {ErrorKind::kRoleEmpty, absl::StatusCode::kInvalidArgument, "etcdserver: role name is empty"},
    {ErrorKind::kAuthFailed, absl::StatusCode::kInvalidArgument,
     "etcdserver: authentication failed, invalid user ID or password"},
    {ErrorKind::kPermissionDenied, absl::StatusCode::kPermissionDenied,
     "etcdserver: permission denied"},
    {ErrorKind::kRoleNotGranted, absl::StatusCode::kFailedPrecondition,
     "etcdserver: role is not granted to the user"},
    {ErrorKind::kPermissionNotGranted, absl::StatusCode::kFailedPrecondition,
     "etcdserver: permission is not granted to the role"},
    {ErrorKind::kAuthNotEnabled, absl::StatusCode::kFailedPrecondition,
     "etcdserver: authentication is not enabled"},
    {ErrorKind::kInvalidAuthToken, absl::StatusCode::kUnauthenticated,
     "etcdserver: invalid auth token"},
    {ErrorKind::kInvalidAuthMgmt, absl::StatusCode::kInvalidArgument,
     "etcdserver: invalid auth management"},
    {ErrorKind::kAuthOldRevision, absl::StatusCode::kInvalidArgument,
     "etcdserver: revision of auth store is old"},
    {ErrorKind::kNoLeader, absl::StatusCode::kUnavailable, "etcdserver: no leader"},
    {ErrorKind::kNotLeader, absl::StatusCode::kFailedPrecondition, "etcdserver: not leader"},
    {ErrorKind::kLeaderChanged, absl::StatusCode::kUnavailable, "etcdserver: leader changed"},
    {ErrorKind::kNotCapable, absl::StatusCode::kUnavailable, "etcdserver: not capable"},
    {ErrorKind::kStopped, absl::StatusCode::kUnavailable, "etcdserver: server stopped"},
    {ErrorKind::kTimeout, absl::StatusCode::kUnavailable, "etcdserver: request timed out"},
    {ErrorKind::kUnhealthy, absl::StatusCode::kUnavailable, "etcdserver: unhealthy cluster"},
    {ErrorKind::kCorrupt, absl::StatusCode::kDataLoss, "etcdserver: corrupt cluster"},
    {ErrorKind::kNotSupportedForLearner, absl::StatusCode::kUnavailable,
     "etcdserver: rpc not supported for learner"},
    {ErrorKind::kBadLeaderTransferee, absl::StatusCode::kFailedPrecondition,
     "etcdserver: bad leader transferee"},
};

constexpr std::string_view kTimeoutPrefix = "etcdserver: request timed out";

std::string_view StripWrapper(std::string_view msg) {
  // Some proxies forward Go's formatted error: "rpc error: code = X desc = <message>".
  constexpr std::string_view kDesc = "desc = ";
  auto pos = msg.find(kDesc);
  if (msg.rfind("rpc error:", 0) == 0 && pos != std::string_view::npos) {
    return msg.substr(pos + kDesc.size());
  }
  return msg;
}

}  // namespace

ErrorKind ErrorKindOf(const absl::Status& status) {
  if (status.ok()) return ErrorKind::kOk;
  std::string_view msg =
      StripWrapper(std::string_view(status.message().data(), status.message().size()));
  for (const WireError& e : kWireErrors) {
    if (msg == e.message) return e.kind;
  }
  // "request timed out, possibly due to previous leader failure" / "... connection lost".
  if (msg.rfind(kTimeoutPrefix, 0) == 0) return ErrorKind::kTimeout;
  // Client-side kinds carry their name as a message prefix (MakeError).
  for (ErrorKind k : {ErrorKind::kLeaseLost, ErrorKind::kChecksumMismatch}) {
    std::string prefix = "cairn: " + std::string(ErrorKindName(k));
    if (msg.rfind(prefix, 0) == 0) return k;
  }
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
      return ErrorKind::kCanceled;
    case absl::StatusCode::kDeadlineExceeded:
      return ErrorKind::kDeadlineExceeded;
    case absl::StatusCode::kUnavailable:
      return ErrorKind::kUnavailable;
    case absl::StatusCode::kInvalidArgument:
      return ErrorKind::kInvalidArgument;
    case absl::StatusCode::kPermissionDenied:
      return ErrorKind::kPermissionDenied;
    default:
      return ErrorKind::kUnknown;
  }
}

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOk:
      return "ok";
    case ErrorKind::kUnknown:
      return "unknown";
    case ErrorKind::kCanceled:
      return "canceled";
    case ErrorKind::kDeadlineExceeded:
      return "deadline_exceeded";
    case ErrorKind::kUnavailable:
      return "unavailable";
    case ErrorKind::kInvalidArgument:
      return "invalid_argument";
    case ErrorKind::kEmptyKey:
      return "empty_key";
    case ErrorKind::kKeyNotFound:
      return "key_not_found";
    case ErrorKind::kValueProvided:
      return "value_provided";
    case ErrorKind::kLeaseProvided:
      return "lease_provided";
    case ErrorKind::kTooManyOps:
      return "too_many_ops";
    case ErrorKind::kDuplicateKey:
      return "duplicate_key";
    case ErrorKind::kCompacted:
      return "compacted";
    case ErrorKind::kFutureRevision:
      return "future_revision";
    case ErrorKind::kNoSpace:
      return "no_space";
    case ErrorKind::kRequestTooLarge:
      return "request_too_large";
    case ErrorKind::kTooManyRequests:
      return "too_many_requests";
    case ErrorKind::kLeaseNotFound:
      return "lease_not_found";
    case ErrorKind::kLeaseExists:
      return "lease_exists";
    case ErrorKind::kLeaseTtlTooLarge:
      return "lease_ttl_too_large";
    case ErrorKind::kLeaseLost:
      return "lease_lost";
    case ErrorKind::kWatchCanceled:
      return "watch_canceled";
    case ErrorKind::kMemberExists:
      return "member_exists";
    case ErrorKind::kPeerUrlExists:
      return "peer_url_exists";
    case ErrorKind::kMemberNotEnoughStarted:
      return "member_not_enough_started";
    case ErrorKind::kMemberBadUrls:
      return "member_bad_urls";
    case ErrorKind::kMemberNotFound:
      return "member_not_found";
    case ErrorKind::kMemberNotLearner:
      return "member_not_learner";
    case ErrorKind::kLearnerNotReady:
      return "learner_not_ready";
    case ErrorKind::kTooManyLearners:
      return "too_many_learners";
    case ErrorKind::kNotSupportedForLearner:
      return "not_supported_for_learner";
    case ErrorKind::kBadLeaderTransferee:
      return "bad_leader_transferee";
    case ErrorKind::kRootUserNotExist:
      return "root_user_not_exist";
    case ErrorKind::kRootRoleNotExist:
      return "root_role_not_exist";
    case ErrorKind::kUserAlreadyExists:
      return "user_already_exists";
    case ErrorKind::kUserEmpty:
      return "user_empty";
    case ErrorKind::kUserNotFound:
      return "user_not_found";
    case ErrorKind::kRoleAlreadyExists:
      return "role_already_exists";
    case ErrorKind::kRoleNotFound:
      return "role_not_found";
    case ErrorKind::kRoleEmpty:
      return "role_empty";
    case ErrorKind::kAuthFailed:
      return "auth_failed";
    case ErrorKind::kPermissionDenied:
      return "permission_denied";
    case ErrorKind::kRoleNotGranted:
      return "role_not_granted";
    case ErrorKind::kPermissionNotGranted:
      return "permission_not_granted";
    case ErrorKind::kAuthNotEnabled:
      return "auth_not_enabled";
    case ErrorKind::kInvalidAuthToken:
      return "invalid_auth_token";
    case ErrorKind::kInvalidAuthMgmt:
      return "invalid_auth_mgmt";
    case ErrorKind::kAuthOldRevision:
      return "auth_old_revision";
    case ErrorKind::kNoLeader:
      return "no_leader";
    case ErrorKind::kNotLeader:
      return "not_leader";
    case ErrorKind::kLeaderChanged:
      return "leader_changed";
    case ErrorKind::kNotCapable:
      return "not_capable";
    case ErrorKind::kStopped:
      return "stopped";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kUnhealthy:
      return "unhealthy";
    case ErrorKind::kCorrupt:
      return "corrupt";
    case ErrorKind::kChecksumMismatch:
      return "checksum_mismatch";
  }
  return "unknown";
}

absl::Status MakeError(ErrorKind kind, std::string_view detail) {
  if (kind == ErrorKind::kOk) return absl::OkStatus();
  for (const WireError& e : kWireErrors) {
    if (e.kind == kind) return absl::Status(e.code, e.message);
  }
  absl::StatusCode code = absl::StatusCode::kUnknown;
  switch (kind) {
    case ErrorKind::kCanceled:
      code = absl::StatusCode::kCancelled;
      break;
    case ErrorKind::kDeadlineExceeded:
      code = absl::StatusCode::kDeadlineExceeded;
      break;
    case ErrorKind::kUnavailable:
      code = absl::StatusCode::kUnavailable;
      break;
    case ErrorKind::kInvalidArgument:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case ErrorKind::kLeaseLost:
      code = absl::StatusCode::kDeadlineExceeded;
      break;
    case ErrorKind::kChecksumMismatch:
      code = absl::StatusCode::kDataLoss;
      break;
    default:
      break;
  }
  std::string msg = "cairn: " + std::string(ErrorKindName(kind));
  if (!detail.empty()) msg += ": " + std::string(detail);
  return absl::Status(code, msg);
}

}  // namespace cairn
