#include "cairn/errors.h"

#include <string>

#include "common/etcd_errors.h"

namespace cairn {
namespace {

// The kind named `name` (ErrorKindName), or kUnknown. The shared table names each row by the
// client kind it parses to; tests/unit/common/etcd_errors_test.cc checks every row has one.
ErrorKind KindNamed(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(ErrorKind::kChecksumMismatch); ++i) {
    auto kind = static_cast<ErrorKind>(i);
    if (ErrorKindName(kind) == name) return kind;
  }
  return ErrorKind::kUnknown;
}

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
  if (const etcd::EtcdErrorRow* row = etcd::FindEtcdErrorByMessage(msg)) {
    return KindNamed(row->name);
  }
  // Later etcd versions add "request timed out, ..." variants (e.g. "waiting for the applied
  // index took too long").
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
  if (const etcd::EtcdErrorRow* row = etcd::FindEtcdErrorByName(ErrorKindName(kind))) {
    return absl::Status(row->code, absl::string_view(row->message.data(), row->message.size()));
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
