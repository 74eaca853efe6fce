// The CAIRN_FAILPOINTS grammar (docs/failpoints.md). Arming them in a real process is
// disk_fault_test.cc.
#include "server/base/failpoint.h"
#include "gtest/gtest.h"

namespace cairn::base {
namespace {

TEST(FailpointTest, AcceptsTheDocumentedForms) {
  EXPECT_EQ(ValidateFailpoints("fsync=error"), "");
  EXPECT_EQ(ValidateFailpoints("fsync=error@after:100"), "");
  EXPECT_EQ(ValidateFailpoints("write=enospc@after:0,dir_fsync=error,backend_sync=enospc"), "");
  EXPECT_EQ(ValidateFailpoints(""), "");
}

TEST(FailpointTest, RejectsWhatItDoesNotKnow) {
  EXPECT_NE(ValidateFailpoints("fsynk=error"), "");
  EXPECT_NE(ValidateFailpoints("fsync=explode"), "");
  EXPECT_NE(ValidateFailpoints("fsync"), "");
  EXPECT_NE(ValidateFailpoints("fsync=error@after:-1"), "");
  EXPECT_NE(ValidateFailpoints("fsync=error@before:3"), "");
  EXPECT_NE(ValidateFailpoints("fsync=error@after:x"), "");
}

TEST(FailpointTest, UnarmedPointsPass) {
  // This process has no CAIRN_FAILPOINTS (ctest does not set it).
  EXPECT_EQ(FailpointErrno("fsync"), 0);
  EXPECT_EQ(FailpointErrno("write"), 0);
}

}  // namespace
}  // namespace cairn::base
