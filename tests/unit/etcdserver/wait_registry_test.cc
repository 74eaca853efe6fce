// WaitRegistry: deadlines expire waiting requests, except those whose entry is being applied.
#include "server/etcdserver/wait_registry.h"

#include "gtest/gtest.h"
#include "server/base/errors.h"

namespace cairn::etcdserver {
namespace {

Waiter Recording(std::vector<absl::Status>* answers) {
  Waiter w;
  w.done = [answers](mvcc::ApplyResult r) { answers->push_back(r.status); };
  return w;
}

TEST(WaitRegistryTest, PinnedRequestIsNotExpiredAndIsTakenWithItsResult) {
  WaitRegistry reg(10);
  std::vector<absl::Status> answers;
  Waiter a = Recording(&answers);
  Waiter b = Recording(&answers);
  ASSERT_TRUE(reg.Register(1, 100, a));
  ASSERT_TRUE(reg.Register(2, 100, b));
  reg.Pin(2);   // entry 2 is being applied
  reg.Pin(99);  // unknown: no-op
  std::vector<Waiter> expired = reg.Expire(100);
  ASSERT_EQ(expired.size(), 1u);  // only request 1
  EXPECT_FALSE(reg.Contains(1));
  EXPECT_TRUE(reg.Contains(2));
  EXPECT_TRUE(reg.Expire(1000).empty());
  std::optional<Waiter> w = reg.Take(2);
  ASSERT_TRUE(w.has_value());
  w->done(mvcc::ApplyResult{});
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].ok());
  EXPECT_EQ(reg.size(), 0u);
}

TEST(WaitRegistryTest, UnpinnedRequestsExpireAtTheirDeadline) {
  WaitRegistry reg(10);
  std::vector<absl::Status> answers;
  Waiter a = Recording(&answers);
  ASSERT_TRUE(reg.Register(1, 100, a));
  EXPECT_TRUE(reg.Expire(99).empty());
  EXPECT_EQ(reg.Expire(100).size(), 1u);
  EXPECT_FALSE(reg.Take(1).has_value());
}

}  // namespace
}  // namespace cairn::etcdserver
