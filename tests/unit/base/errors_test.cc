// Pins every row of the etcd error table: code and exact message (clients match on the strings).
#include "server/base/errors.h"

#include <set>

#include "gtest/gtest.h"

namespace cairn::base {
namespace {

TEST(ErrorTableTest, RowsAreInKindOrderAndUnique) {
  size_t n = 0;
  const ErrorRow* rows = ErrorTable(&n);
  std::set<std::string_view> messages;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(static_cast<size_t>(rows[i].kind), i);
    EXPECT_TRUE(messages.insert(rows[i].message).second) << rows[i].message;
    EXPECT_TRUE(IsError(MakeError(rows[i].kind), rows[i].kind));
  }
}

TEST(ErrorTableTest, MatchesEtcd) {
  struct Want {
    ErrorKind kind;
    absl::StatusCode code;
    const char* message;
  };
  using C = absl::StatusCode;
  const Want want[] = {
      {ErrorKind::kEmptyKey, C::kInvalidArgument, "etcdserver: key is not provided"},
      {ErrorKind::kKeyNotFound, C::kInvalidArgument, "etcdserver: key not found"},
      {ErrorKind::kValueProvided, C::kInvalidArgument, "etcdserver: value is provided"},
      {ErrorKind::kLeaseProvided, C::kInvalidArgument, "etcdserver: lease is provided"},
      {ErrorKind::kTooManyOps, C::kInvalidArgument,
       "etcdserver: too many operations in txn request"},
      {ErrorKind::kDuplicateKey, C::kInvalidArgument,
       "etcdserver: duplicate key given in txn request"},
      {ErrorKind::kCompacted, C::kOutOfRange,
       "etcdserver: mvcc: required revision has been compacted"},
      {ErrorKind::kFutureRev, C::kOutOfRange,
       "etcdserver: mvcc: required revision is a future revision"},
      {ErrorKind::kLeaseNotFound, C::kNotFound, "etcdserver: requested lease not found"},
      {ErrorKind::kLeaseExist, C::kFailedPrecondition, "etcdserver: lease already exists"},
      {ErrorKind::kRequestTooLarge, C::kInvalidArgument, "etcdserver: request is too large"},
      {ErrorKind::kNoLeader, C::kUnavailable, "etcdserver: no leader"},
      {ErrorKind::kUnhealthy, C::kUnavailable, "etcdserver: unhealthy cluster"},
      {ErrorKind::kNotEnoughStartedMembers, C::kUnknown,
       "etcdserver: re-configuration failed due to not enough started members"},
      {ErrorKind::kPermissionDenied, C::kPermissionDenied, "etcdserver: permission denied"},
      {ErrorKind::kInvalidAuthToken, C::kUnauthenticated, "etcdserver: invalid auth token"},
  };
  for (const Want& w : want) {
    absl::Status s = MakeError(w.kind);
    EXPECT_EQ(s.code(), w.code) << w.message;
    EXPECT_EQ(std::string(s.message()), w.message);
  }
}

}  // namespace
}  // namespace cairn::base
