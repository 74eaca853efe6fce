// The server side of the etcd error table: MakeError and IsError agree on every row. The rows
// themselves are pinned, with the client, by tests/unit/common/etcd_errors_test.cc.
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

}  // namespace
}  // namespace cairn::base
