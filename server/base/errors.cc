#include "server/base/errors.h"

#include <iterator>

#include "server/base/check.h"

namespace cairn::base {
namespace {

using C = absl::StatusCode;

// Codes and messages as etcd's api/v3rpc/rpctypes (3.4/3.5).
constexpr ErrorRow kTable[] = {
    {ErrorKind::kEmptyKey, C::kInvalidArgument, "etcdserver: key is not provided"},
    {ErrorKind::kKeyNotFound, C::kInvalidArgument, "etcdserver: key not found"},
    {ErrorKind::kValueProvided, C::kInvalidArgument, "etcdserver: value is provided"},
    {ErrorKind::kLeaseProvided, C::kInvalidArgument, "etcdserver: lease is provided"},
    {ErrorKind::kTooManyOps, C::kInvalidArgument, "etcdserver: too many operations in txn request"},
    {ErrorKind::kDuplicateKey, C::kInvalidArgument,
     "etcdserver: duplicate key given in txn request"},
    {ErrorKind::kCompacted, C::kOutOfRange,
     "etcdserver: mvcc: required revision has been compacted"},
    {ErrorKind::kFutureRev, C::kOutOfRange,
     "etcdserver: mvcc: required revision is a future revision"},
    {ErrorKind::kNoSpace, C::kResourceExhausted, "etcdserver: mvcc: database space exceeded"},
    {ErrorKind::kLeaseNotFound, C::kNotFound, "etcdserver: requested lease not found"},
    {ErrorKind::kLeaseExist, C::kFailedPrecondition, "etcdserver: lease already exists"},
    {ErrorKind::kLeaseTTLTooLarge, C::kOutOfRange, "etcdserver: too large lease TTL"},
    {ErrorKind::kRequestTooLarge, C::kInvalidArgument, "etcdserver: request is too large"},
    {ErrorKind::kTooManyRequests, C::kResourceExhausted, "etcdserver: too many requests"},
    {ErrorKind::kNoLeader, C::kUnavailable, "etcdserver: no leader"},
    {ErrorKind::kNotLeader, C::kFailedPrecondition, "etcdserver: not leader"},
    {ErrorKind::kLeaderChanged, C::kUnavailable, "etcdserver: leader changed"},
    {ErrorKind::kStopped, C::kUnavailable, "etcdserver: server stopped"},
    {ErrorKind::kTimeout, C::kUnavailable, "etcdserver: request timed out"},
    {ErrorKind::kTimeoutDueToLeaderFail, C::kUnavailable,
     "etcdserver: request timed out, possibly due to previous leader failure"},
    {ErrorKind::kUnhealthy, C::kUnavailable, "etcdserver: unhealthy cluster"},
    {ErrorKind::kCorrupt, C::kDataLoss, "etcdserver: corrupt cluster"},
    {ErrorKind::kPermissionDenied, C::kPermissionDenied, "etcdserver: permission denied"},
    {ErrorKind::kMemberNotFound, C::kNotFound, "etcdserver: member not found"},
    {ErrorKind::kMemberExist, C::kFailedPrecondition, "etcdserver: member ID already exist"},
    {ErrorKind::kPeerURLExist, C::kFailedPrecondition, "etcdserver: Peer URLs already exists"},
    {ErrorKind::kMemberBadURLs, C::kInvalidArgument, "etcdserver: given member URLs are invalid"},
    {ErrorKind::kMemberNotLearner, C::kFailedPrecondition,
     "etcdserver: can only promote a learner member"},
    {ErrorKind::kLearnerNotReady, C::kFailedPrecondition,
     "etcdserver: can only promote a learner member which is in sync with leader"},
    {ErrorKind::kUserEmpty, C::kInvalidArgument, "etcdserver: user name is empty"},
    {ErrorKind::kAuthFailed, C::kInvalidArgument,
     "etcdserver: authentication failed, invalid user ID or password"},
    {ErrorKind::kInvalidAuthToken, C::kUnauthenticated, "etcdserver: invalid auth token"},
    {ErrorKind::kAuthNotEnabled, C::kFailedPrecondition,
     "etcdserver: authentication is not enabled"},
    {ErrorKind::kNotSupportedForLearner, C::kUnavailable,
     "etcdserver: rpc not supported for learner"},
    {ErrorKind::kBadLeaderTransferee, C::kFailedPrecondition, "etcdserver: bad leader transferee"},
    // etcd 3.4 has no gRPC mapping for this one and answers it as UNKNOWN: so do we.
    {ErrorKind::kNotEnoughStartedMembers, C::kUnknown,
     "etcdserver: re-configuration failed due to not enough started members"},
};

}  // namespace

const ErrorRow* ErrorTable(size_t* size) {
  *size = std::size(kTable);
  return kTable;
}

absl::Status MakeError(ErrorKind kind) {
  const ErrorRow& row = kTable[static_cast<size_t>(kind)];
  CAIRN_CHECK(row.kind == kind) << "error table out of order";
  return absl::Status(row.code, absl::string_view(row.message.data(), row.message.size()));
}

bool IsError(const absl::Status& status, ErrorKind kind) {
  const ErrorRow& row = kTable[static_cast<size_t>(kind)];
  absl::string_view m = status.message();
  return status.code() == row.code && std::string_view(m.data(), m.size()) == row.message;
}

}  // namespace cairn::base
