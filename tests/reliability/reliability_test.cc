// The bounded CI set of the reliability suite (docs/reliability.md): short runs of the register
// workload on 3 real members with one fault kind each, checked by tests/history. The long runs
// are scripts/torture.sh. A failure prints the seed and the directory holding history and logs.
// The binary enters a private network namespace first thing in main, as cairn-torture does, so
// no process outside the test can reach the members (IsolationTest).
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/reliability/lock_workload.h"
#include "tests/reliability/partition.h"
#include "tests/reliability/workload.h"

namespace cairn::reliability {
namespace {

struct Case {
  const char* name;
  testing::ServerKind kind;
  const char* faults;
  uint64_t seed;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ReliabilityTest : public ::testing::TestWithParam<Case> {};

TEST_P(ReliabilityTest, RegisterWorkloadIsLinearizableAndWatchesHold) {
  const Case& c = GetParam();
  std::string error;
  RunOptions options;
  options.kind = c.kind;
  options.members = 3;
  options.faults = ParseFaults(c.faults, &error);
  options.duration_ms = 6000;
  options.seed = c.seed;
  ASSERT_TRUE(error.empty()) << error;
  RunResult result = RunRegisterWorkload(options);
  ASSERT_TRUE(result.ok()) << "seed " << c.seed << " faults " << c.faults << ": "
                           << result.Summary();
  EXPECT_GT(result.faults_injected, 0);
  EXPECT_GT(result.report.ops_checked, 50) << result.Summary();
  EXPECT_GT(result.report.events_checked, 50) << result.Summary();
}

INSTANTIATE_TEST_SUITE_P(
    Ci, ReliabilityTest,
    ::testing::Values(Case{"CairnKillPause", testing::ServerKind::kCairn, "kill,pause", 1},
                      Case{"CairnMemberDisk", testing::ServerKind::kCairn, "member,disk", 2},
                      Case{"EtcdKillPause", testing::ServerKind::kEtcd, "kill,pause", 3}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// The lock workload: a counter incremented under the recipes' Mutex, each write fenced by the
// grant's Guard(); kill and pause of members must lose no acknowledged increment.
TEST(LockWorkloadTest, FencedCounterLosesNoUpdate) {
  std::string error;
  RunOptions options;
  options.kind = testing::ServerKind::kCairn;
  options.members = 3;
  options.faults = ParseFaults("kill,pause", &error);
  options.duration_ms = 8000;
  options.seed = 4;
  LockResult result = RunLockWorkload(options);
  ASSERT_TRUE(result.ok()) << "seed 4: " << result.Summary();
  EXPECT_GT(result.acknowledged, 10) << result.Summary();
  // The stalled contender's late write was refused by the fencing guard.
  EXPECT_GT(result.fenced, 0) << result.Summary();
  EXPECT_GT(result.faults_injected, 0);
  RecordProperty("summary", result.Summary());
}

// docs/reliability.md, "Seed 327": a write from outside the run (a put of a key outside the
// workload's prefix, as a stray client of another process makes) gives the checker a revision
// no recorded operation can have written. The run must fail naming the write, with what the
// revision held, not with an unexplained "no-writer" alone.
TEST(OutsideWriteTest, AWriteFromOutsideTheRunIsNamed) {
  RunOptions options;
  options.kind = testing::ServerKind::kCairn;
  options.members = 1;
  options.faults = {};
  options.duration_ms = 2000;
  options.seed = 6;
  options.outside_writes = 1;
  RunResult result = RunRegisterWorkload(options);
  ASSERT_TRUE(result.error.empty()) << result.Summary();
  EXPECT_FALSE(result.ok());
  // The checker alone sees exactly the seed-327 signature: a revision with no writer.
  EXPECT_TRUE(result.report.Has("no-writer")) << result.Summary();
  ASSERT_EQ(result.outside_writes.size(), 1u) << result.Summary();
  EXPECT_TRUE(absl::StrContains(result.outside_writes[0], "PUT x/outside-0=not-the-workload"))
      << result.Summary();
  // The diagnosis of the no-writer revision names the same put, from the observer and a Range.
  ASSERT_EQ(result.diagnosis.size(), 2u) << result.Summary();
  EXPECT_TRUE(absl::StrContains(result.diagnosis[0], "observer got [PUT x/outside-0="))
      << result.Summary();
  EXPECT_TRUE(absl::StrContains(result.diagnosis[1], "differs by [PUT x/outside-0="))
      << result.Summary();
  ASSERT_FALSE(result.kept_dir.empty());
  EXPECT_TRUE(std::filesystem::exists(result.kept_dir + "/keyspace.txt"));
  std::error_code ignored;
  std::filesystem::remove_all(result.kept_dir, ignored);
}

// The members live in the test's private network namespace: nothing on the host can reach them.
TEST(IsolationTest, MembersAreNotOnTheHostNetwork) {
  RunOptions options;
  options.members = 1;
  auto cluster = StartCluster(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  EXPECT_FALSE(SharesHostNetwork((*cluster)->Pid(0)));
}

}  // namespace
}  // namespace cairn::reliability

int main(int argc, char** argv) {
  // Listing the tests (ctest's discovery at build time) needs no namespace, nor root.
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing = listing || std::string(argv[i]) == "--gtest_list_tests";
  if (std::string failed = listing ? "" : cairn::reliability::EnterPrivateNetworkNamespace();
      !failed.empty()) {
    // The runs still work on the host's network (IsolationTest fails then).
    std::fprintf(stderr, "no private network namespace: %s\n", failed.c_str());
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
