// The bounded CI set of the reliability suite (docs/reliability.md): short runs of the register
// workload on 3 real members with one fault kind each, checked by tests/history. The long runs
// are scripts/torture.sh. A failure prints the seed and the directory holding history and logs.
#include <ostream>
#include <string>

#include "gtest/gtest.h"
#include "tests/reliability/lock_workload.h"
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

}  // namespace
}  // namespace cairn::reliability
