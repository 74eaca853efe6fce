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

TEST_P(SamplesTest, LeaderSelector) {
  auto r = RunCommand({CAIRN_SAMPLE_LEADER_SELECTOR, "samples/selector", "svc-1", "3",
                       cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("svc-1 ran job 2 as leader"), std::string::npos) << r.out;
  auto got = client_->kv().Get("samples/selector-last-job");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "svc-1 job 2");
  EXPECT_TRUE(KeysUnder("samples/selector/").empty());  // resigned
}

TEST_P(SamplesTest, ServiceDiscovery) {
  auto r = RunCommand({CAIRN_SAMPLE_SERVICE_DISCOVERY, "samples/svc", cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("call 3 -> 10.0.0.2:8080"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("after mark-down -> 10.0.0.2:8080"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("registered: 10.0.0.1:8080 {\"zone\":\"a\"}"), std::string::npos) << r.out;
  EXPECT_TRUE(KeysUnder("samples/svc/").empty());  // both deregistered
}

TEST_P(SamplesTest, StmTransfer) {
  auto r =
      RunCommand({CAIRN_SAMPLE_STM_TRANSFER, "samples/bank", "20", cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("total 200"), std::string::npos) << r.out;
}

TEST_P(SamplesTest, Barrier) {
  auto r = RunCommand({CAIRN_SAMPLE_BARRIER, "samples/barrier", "3", cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("worker 2 passed the gate"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("all 3 left the phase"), std::string::npos) << r.out;
  EXPECT_TRUE(KeysUnder("samples/barrier/").empty());
}

TEST_P(SamplesTest, Semaphore) {
  auto r =
      RunCommand({CAIRN_SAMPLE_SEMAPHORE, "samples/sem", "2", "5", cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("5 of 5 workers done"), std::string::npos) << r.out;
  EXPECT_EQ(KeysUnder("samples/sem-work/").size(), 5u);
  EXPECT_TRUE(KeysUnder("samples/sem/").empty());
}

TEST_P(SamplesTest, RwMutex) {
  auto r = RunCommand({CAIRN_SAMPLE_RW_MUTEX, "samples/rw", cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("fenced write applied"), std::string::npos) << r.out;
  EXPECT_TRUE(KeysUnder("samples/rw/").empty());
}

TEST_P(SamplesTest, Counter) {
  auto r =
      RunCommand({CAIRN_SAMPLE_COUNTER, "samples/count", "3", "10", cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("counter = 30"), std::string::npos) << r.out;
}

TEST_P(SamplesTest, PrefixCache) {
  auto r = RunCommand({CAIRN_SAMPLE_PREFIX_CACHE, "samples/config/", cluster_->ClientEndpoint(0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("delete samples/config/max_conns"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("log_level = debug"), std::string::npos) << r.out;
}

// The samples are checked against cairn (the recipes themselves run against both servers).
INSTANTIATE_TEST_SUITE_P(Servers, SamplesTest, ::testing::Values(ServerKind::kCairn), KindName);

}  // namespace
}  // namespace cairn::recipes_test
