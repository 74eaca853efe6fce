// Runs each recipe sample once against cairn and checks what it did.
#include <gtest/gtest.h>

#include "cairn/recipes/queue.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using cairn::testing::RunCommand;

class SamplesTest : public RecipeTest {};

TEST_P(SamplesTest, MutexFencedWrite) {
  auto r = RunCommand({CAIRN_SAMPLE_MUTEX_FENCED_WRITE, "samples/lock", "samples/key", "v1",
                       cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("fencing token"), std::string::npos) << r.out;
  auto got = client_->kv().Get("samples/key");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "v1");
  EXPECT_TRUE(KeysUnder("samples/lock/").empty());  // unlocked
}

TEST_P(SamplesTest, QueueWorker) {
  recipes::Queue q(*client_, "samples/queue");
  ASSERT_TRUE(q.Enqueue("job-a").ok());
  ASSERT_TRUE(q.Enqueue("job-b").ok());
  auto r =
      RunCommand({CAIRN_SAMPLE_QUEUE_WORKER, "samples/queue", "2", cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("processed job-a"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("processed job-b"), std::string::npos) << r.out;
  EXPECT_EQ(*q.Size(), 0);
}

TEST_P(SamplesTest, Election) {
  auto r = RunCommand(
      {CAIRN_SAMPLE_ELECTION, "samples/election", "me", "1", cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("leader: me"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("resigned"), std::string::npos) << r.out;
  EXPECT_TRUE(KeysUnder("samples/election/").empty());
}

// The samples are checked against cairn (the recipes themselves run against both servers).
INSTANTIATE_TEST_SUITE_P(Servers, SamplesTest, ::testing::Values(ServerKind::kCairn), KindName);

}  // namespace
}  // namespace cairn::recipes_test
