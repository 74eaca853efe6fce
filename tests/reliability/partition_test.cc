// Partitions on real members (partition.h). The binary enters a private network namespace first
// thing in main (it fails, not skips, when it cannot), so no rule ever reaches the host's network.
#include <cstdio>
#include <ostream>
#include <string>

#include "gtest/gtest.h"
#include "tests/harness/cluster_ops.h"
#include "tests/reliability/partition.h"
#include "tests/reliability/workload.h"

namespace cairn::reliability {
namespace {

class PartitionTest : public ::testing::TestWithParam<testing::ServerKind> {};

// The machinery itself: a leader cut off from both followers loses the leadership to one of them
// at a higher term, and after healing the cluster agrees on one leader again.
TEST_P(PartitionTest, IsolatingTheLeaderElectsAnother) {
  RunOptions options;
  options.kind = GetParam();
  auto cluster = StartCluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  testing::ServerCluster& c = **cluster;
  absl::StatusOr<int> leader = testing::WaitForLeader(c, 10000);
  ASSERT_TRUE(leader.ok()) << leader.status();
  auto before = testing::MemberStatus(c.ClientEndpoint(*leader));
  ASSERT_TRUE(before.ok()) << before.status();
  auto partitioner = Partitioner::Create();
  ASSERT_TRUE(partitioner.ok()) << partitioner.status();
  std::vector<int> others;
  for (int m = 0; m < c.size(); ++m) {
    if (m != *leader) others.push_back(m);
  }
  ASSERT_TRUE((*partitioner)->Cut(c, {*leader}, others).ok());
  absl::StatusOr<int> next = testing::WaitForLeader(c, 15000, {*leader});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(*next, *leader);
  auto after = testing::MemberStatus(c.ClientEndpoint(*next));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(after->raftterm(), before->raftterm());
  ASSERT_TRUE((*partitioner)->Heal().ok());
  EXPECT_TRUE(testing::WaitForLeader(c, 15000).ok());
}

INSTANTIATE_TEST_SUITE_P(Kinds, PartitionTest,
                         ::testing::Values(testing::ServerKind::kCairn, testing::ServerKind::kEtcd),
                         [](const ::testing::TestParamInfo<testing::ServerKind>& info) {
                           return testing::ServerKindName(info.param);
                         });

TEST(PartitionWorkloadTest, RegisterWorkloadUnderPartitions) {
  std::string error;
  RunOptions options;
  options.kind = testing::ServerKind::kCairn;
  options.members = 3;
  options.faults = ParseFaults("partition,kill", &error);
  options.duration_ms = 6000;
  options.seed = 5;
  ASSERT_TRUE(error.empty()) << error;
  RunResult result = RunRegisterWorkload(options);
  ASSERT_TRUE(result.ok()) << "seed 5: " << result.Summary();
  EXPECT_GT(result.faults_injected, 0);
  EXPECT_GT(result.report.ops_checked, 50) << result.Summary();
}

}  // namespace
}  // namespace cairn::reliability

int main(int argc, char** argv) {
  // Listing the tests (ctest's discovery at build time) needs no namespace, nor root.
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing = listing || std::string(argv[i]) == "--gtest_list_tests";
  if (std::string failed = listing ? "" : cairn::reliability::EnterPrivateNetworkNamespace();
      !failed.empty()) {
    std::fprintf(stderr, "FATAL: partition tests need a private network namespace: %s\n",
                 failed.c_str());
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
