// The one etcd error table (common/etcd_errors.h, docs/errors.md), pinned row by row: etcd's gRPC
// code and exact message (clients match on the strings), and the server and the client agreeing on
// every row: the status the server produces parses back to the row's kind in the client, and the
// status the client produces for that kind is the server's, byte for byte.
#include "common/etcd_errors.h"

#include <set>
#include <string>
#include <string_view>

#include "cairn/errors.h"
#include "gtest/gtest.h"
#include "server/base/errors.h"

namespace cairn {
namespace {

using Kind = base::ErrorKind;
using C = absl::StatusCode;

struct Want {
  Kind kind;              // the server's kind (the table's enum)
  ErrorKind client_kind;  // what the client parses the row to
  C code;
  const char* message;
};

// etcd 3.4's api/v3rpc/rpctypes; not-enough-started-members with the UNKNOWN code etcd 3.4 sends.
const Want kWant[] = {
    {Kind::kEmptyKey, ErrorKind::kEmptyKey, C::kInvalidArgument, "etcdserver: key is not provided"},
    {Kind::kKeyNotFound, ErrorKind::kKeyNotFound, C::kInvalidArgument, "etcdserver: key not found"},
    {Kind::kValueProvided, ErrorKind::kValueProvided, C::kInvalidArgument,
     "etcdserver: value is provided"},
    {Kind::kLeaseProvided, ErrorKind::kLeaseProvided, C::kInvalidArgument,
     "etcdserver: lease is provided"},
    {Kind::kTooManyOps, ErrorKind::kTooManyOps, C::kInvalidArgument,
     "etcdserver: too many operations in txn request"},
    {Kind::kDuplicateKey, ErrorKind::kDuplicateKey, C::kInvalidArgument,
     "etcdserver: duplicate key given in txn request"},
    {Kind::kCompacted, ErrorKind::kCompacted, C::kOutOfRange,
     "etcdserver: mvcc: required revision has been compacted"},
    {Kind::kFutureRev, ErrorKind::kFutureRevision, C::kOutOfRange,
     "etcdserver: mvcc: required revision is a future revision"},
    {Kind::kNoSpace, ErrorKind::kNoSpace, C::kResourceExhausted,
     "etcdserver: mvcc: database space exceeded"},
    {Kind::kLeaseNotFound, ErrorKind::kLeaseNotFound, C::kNotFound,
     "etcdserver: requested lease not found"},
    {Kind::kLeaseExist, ErrorKind::kLeaseExists, C::kFailedPrecondition,
     "etcdserver: lease already exists"},
    {Kind::kLeaseTTLTooLarge, ErrorKind::kLeaseTtlTooLarge, C::kOutOfRange,
     "etcdserver: too large lease TTL"},
    {Kind::kRequestTooLarge, ErrorKind::kRequestTooLarge, C::kInvalidArgument,
     "etcdserver: request is too large"},
    {Kind::kTooManyRequests, ErrorKind::kTooManyRequests, C::kResourceExhausted,
     "etcdserver: too many requests"},
    {Kind::kNoLeader, ErrorKind::kNoLeader, C::kUnavailable, "etcdserver: no leader"},
    {Kind::kNotLeader, ErrorKind::kNotLeader, C::kFailedPrecondition, "etcdserver: not leader"},
    {Kind::kLeaderChanged, ErrorKind::kLeaderChanged, C::kUnavailable,
     "etcdserver: leader changed"},
    {Kind::kStopped, ErrorKind::kStopped, C::kUnavailable, "etcdserver: server stopped"},
    {Kind::kTimeout, ErrorKind::kTimeout, C::kUnavailable, "etcdserver: request timed out"},
    {Kind::kTimeoutDueToLeaderFail, ErrorKind::kTimeout, C::kUnavailable,
     "etcdserver: request timed out, possibly due to previous leader failure"},
    {Kind::kUnhealthy, ErrorKind::kUnhealthy, C::kUnavailable, "etcdserver: unhealthy cluster"},
    {Kind::kCorrupt, ErrorKind::kCorrupt, C::kDataLoss, "etcdserver: corrupt cluster"},
    {Kind::kPermissionDenied, ErrorKind::kPermissionDenied, C::kPermissionDenied,
     "etcdserver: permission denied"},
    {Kind::kMemberNotFound, ErrorKind::kMemberNotFound, C::kNotFound,
     "etcdserver: member not found"},
    {Kind::kMemberExist, ErrorKind::kMemberExists, C::kFailedPrecondition,
     "etcdserver: member ID already exist"},
    {Kind::kPeerURLExist, ErrorKind::kPeerUrlExists, C::kFailedPrecondition,
     "etcdserver: Peer URLs already exists"},
    {Kind::kMemberBadURLs, ErrorKind::kMemberBadUrls, C::kInvalidArgument,
     "etcdserver: given member URLs are invalid"},
    {Kind::kMemberNotLearner, ErrorKind::kMemberNotLearner, C::kFailedPrecondition,
     "etcdserver: can only promote a learner member"},
    {Kind::kLearnerNotReady, ErrorKind::kLearnerNotReady, C::kFailedPrecondition,
     "etcdserver: can only promote a learner member which is in sync with leader"},
    {Kind::kUserEmpty, ErrorKind::kUserEmpty, C::kInvalidArgument,
     "etcdserver: user name is empty"},
    {Kind::kAuthFailed, ErrorKind::kAuthFailed, C::kInvalidArgument,
     "etcdserver: authentication failed, invalid user ID or password"},
    {Kind::kInvalidAuthToken, ErrorKind::kInvalidAuthToken, C::kUnauthenticated,
     "etcdserver: invalid auth token"},
    {Kind::kAuthNotEnabled, ErrorKind::kAuthNotEnabled, C::kFailedPrecondition,
     "etcdserver: authentication is not enabled"},
    {Kind::kNotSupportedForLearner, ErrorKind::kNotSupportedForLearner, C::kUnavailable,
     "etcdserver: rpc not supported for learner"},
    {Kind::kBadLeaderTransferee, ErrorKind::kBadLeaderTransferee, C::kFailedPrecondition,
     "etcdserver: bad leader transferee"},
    {Kind::kNotEnoughStartedMembers, ErrorKind::kMemberNotEnoughStarted, C::kUnknown,
     "etcdserver: re-configuration failed due to not enough started members"},
    {Kind::kWatchCanceled, ErrorKind::kWatchCanceled, C::kCancelled, "etcdserver: watch canceled"},
    {Kind::kTooManyLearners, ErrorKind::kTooManyLearners, C::kFailedPrecondition,
     "etcdserver: too many learner members in cluster"},
    {Kind::kRootUserNotExist, ErrorKind::kRootUserNotExist, C::kFailedPrecondition,
     "etcdserver: root user does not exist"},
    {Kind::kRootRoleNotExist, ErrorKind::kRootRoleNotExist, C::kFailedPrecondition,
     "etcdserver: root user does not have root role"},
    {Kind::kUserAlreadyExist, ErrorKind::kUserAlreadyExists, C::kFailedPrecondition,
     "etcdserver: user name already exists"},
    {Kind::kUserNotFound, ErrorKind::kUserNotFound, C::kFailedPrecondition,
     "etcdserver: user name not found"},
    {Kind::kRoleAlreadyExist, ErrorKind::kRoleAlreadyExists, C::kFailedPrecondition,
     "etcdserver: role name already exists"},
    {Kind::kRoleNotFound, ErrorKind::kRoleNotFound, C::kFailedPrecondition,
     "etcdserver: role name not found"},
    {Kind::kRoleEmpty, ErrorKind::kRoleEmpty, C::kInvalidArgument,
     "etcdserver: role name is empty"},
    {Kind::kRoleNotGranted, ErrorKind::kRoleNotGranted, C::kFailedPrecondition,
     "etcdserver: role is not granted to the user"},
    {Kind::kPermissionNotGranted, ErrorKind::kPermissionNotGranted, C::kFailedPrecondition,
     "etcdserver: permission is not granted to the role"},
    {Kind::kInvalidAuthMgmt, ErrorKind::kInvalidAuthMgmt, C::kInvalidArgument,
     "etcdserver: invalid auth management"},
    {Kind::kAuthOldRevision, ErrorKind::kAuthOldRevision, C::kInvalidArgument,
     "etcdserver: revision of auth store is old"},
    {Kind::kNotCapable, ErrorKind::kNotCapable, C::kUnavailable, "etcdserver: not capable"},
    {Kind::kTimeoutDueToConnectionLost, ErrorKind::kTimeout, C::kUnavailable,
     "etcdserver: request timed out, possibly due to connection lost"},
};

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(EtcdErrorTableTest, PinsEveryRow) {
  ASSERT_EQ(std::size(kWant), etcd::kEtcdErrorCount);
  size_t n = 0;
  const base::ErrorRow* rows = base::ErrorTable(&n);
  ASSERT_EQ(n, etcd::kEtcdErrorCount);
  for (size_t i = 0; i < n; ++i) {
    const Want& w = kWant[i];
    SCOPED_TRACE(w.message);
    EXPECT_EQ(rows[i].kind, w.kind);
    EXPECT_EQ(rows[i].code, w.code);
    EXPECT_EQ(rows[i].message, w.message);
    absl::Status s = base::MakeError(w.kind);
    EXPECT_EQ(s.code(), w.code);
    EXPECT_EQ(Message(s), w.message);
    EXPECT_TRUE(base::IsError(absl::Status(w.code, w.message), w.kind));
  }
}

TEST(EtcdErrorTableTest, ClientParsesWhatTheServerProduces) {
  for (const Want& w : kWant) {
    absl::Status server = base::MakeError(w.kind);
    EXPECT_EQ(ErrorKindOf(server), w.client_kind) << w.message;
    EXPECT_EQ(ErrorKindName(w.client_kind), etcd::EtcdErrorRowOf(w.kind).name) << w.message;
    // As Go's formatted error, as some proxies forward it.
    absl::Status wrapped(server.code(), "rpc error: code = X desc = " + Message(server));
    EXPECT_EQ(ErrorKindOf(wrapped), w.client_kind) << w.message;
  }
}

TEST(EtcdErrorTableTest, ClientProducesWhatTheServerDoes) {
  std::set<ErrorKind> seen;
  for (const Want& w : kWant) {
    if (!seen.insert(w.client_kind).second) continue;  // the first row of a kind is its wire form
    absl::Status client = MakeError(w.client_kind);
    EXPECT_TRUE(base::IsError(client, w.kind)) << w.message << " vs " << client;
  }
}

TEST(EtcdErrorTableTest, EveryClientKindWithAWireFormHasARow) {
  // The client's own kinds: conditions seen on the client's side, never an etcd message.
  const std::set<ErrorKind> client_only = {
      ErrorKind::kOk,          ErrorKind::kUnknown,
      ErrorKind::kCanceled,    ErrorKind::kDeadlineExceeded,
      ErrorKind::kUnavailable, ErrorKind::kInvalidArgument,
      ErrorKind::kLeaseLost,   ErrorKind::kChecksumMismatch,
  };
  for (int i = 0; i <= static_cast<int>(ErrorKind::kChecksumMismatch); ++i) {
    auto kind = static_cast<ErrorKind>(i);
    const etcd::EtcdErrorRow* row = etcd::FindEtcdErrorByName(ErrorKindName(kind));
    EXPECT_EQ(row == nullptr, client_only.count(kind) == 1) << ErrorKindName(kind);
  }
}

TEST(EtcdErrorTableTest, ServerRejectsANearMiss) {
  EXPECT_FALSE(base::IsError(absl::Status(C::kOutOfRange, "etcdserver: mvcc: required revision"),
                             Kind::kCompacted));
  EXPECT_FALSE(base::IsError(absl::Status(C::kUnavailable, "etcdserver: key not found"),
                             Kind::kKeyNotFound));
  EXPECT_EQ(ErrorKindOf(absl::Status(C::kOutOfRange, "etcdserver: mvcc: required revision")),
            ErrorKind::kUnknown);
}

}  // namespace
}  // namespace cairn
