// Whole-member deterministic simulation sweep (tests/sim/member_sim.h; docs/testing.md).
//
//   CAIRN_SIM_SEEDS=N        seeds per cluster size (3 and 5 members); default 250
//   CAIRN_SIM_SEED_START=S   first seed; default 1
//   CAIRN_SIM_SEED=S         replay one seed with a full trace (CAIRN_SIM_MEMBERS=3|5, default 3)
//
// Every seed that ever failed goes into member_regression_seeds.txt, which MemberSimRegression
// always runs.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <tuple>

#include "gtest/gtest.h"
#include "tests/sim/member_sim.h"

namespace cairn::etcdserver::sim {
namespace {

constexpr int kShards = 4;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::strtoull(v, nullptr, 10);
}

std::string ReplayHint(int members, uint64_t seed) {
  std::ostringstream os;
  os << "replay: CAIRN_SIM_SEED=" << seed << " CAIRN_SIM_MEMBERS=" << members
     << " member_sim_test --gtest_filter='MemberSimReplay.*'";
  return os.str();
}

// A CAIRN_CHECK inside a member aborts the process: print the seed on the way down.
void OnAbort(int) {
  char buf[200];
  int n =
      snprintf(buf, sizeof(buf),
               "\n*** member simulation aborted: seed=%llu members=%d (CAIRN_SIM_SEED=%llu "
               "CAIRN_SIM_MEMBERS=%d replays it)\n",
               static_cast<unsigned long long>(CurrentMemberSimSeed()), CurrentMemberSimMembers(),
               static_cast<unsigned long long>(CurrentMemberSimSeed()), CurrentMemberSimMembers());
  if (n > 0) (void)!write(2, buf, static_cast<size_t>(n));
  std::signal(SIGABRT, SIG_DFL);
}

class AbortHandlerEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { std::signal(SIGABRT, OnAbort); }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new AbortHandlerEnvironment);

void RunSeed(int members, uint64_t seed, bool trace) {
  MemberSimOptions options;
  options.members = members;
  options.seed = seed;
  options.trace = trace;
  MemberSimResult r = RunMemberSimulation(options);
  if (!r.ok) {
    ADD_FAILURE() << "member simulation failed: seed=" << seed << " members=" << members << ": "
                  << r.failure << "\n  " << ReplayHint(members, seed) << "\n  then add \""
                  << members << " " << seed << "\" to tests/sim/member_regression_seeds.txt";
  }
  if (trace) {
    std::cerr << "simulated " << r.sim_ms << "ms: proposals " << r.proposals << " acknowledged "
              << r.acknowledged << " delivered " << r.messages_delivered << " crashes " << r.crashes
              << " snapshots sent " << r.snapshots_sent << " installed " << r.snapshots_installed
              << " leader changes " << r.leader_changes << " transfers " << r.transfers
              << " final revision " << r.final_revision << "\n";
  }
}

class MemberSimSweep : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(MemberSimSweep, Seeds) {
  auto [members, shard] = GetParam();
  uint64_t seeds = EnvOr("CAIRN_SIM_SEEDS", 250);
  uint64_t start = EnvOr("CAIRN_SIM_SEED_START", 1);
  int failures = 0;
  auto t0 = std::chrono::steady_clock::now();
  uint64_t ran = 0;
  for (uint64_t seed = start + shard; seed < start + seeds; seed += kShards) {
    RunSeed(members, seed, false);
    ++ran;
    if (::testing::Test::HasFailure() && ++failures >= 5) break;  // enough to start debugging
  }
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::cout << "ran " << ran << " seeds of " << members << " members in " << ms << " ms\n";
}

INSTANTIATE_TEST_SUITE_P(MemberSim, MemberSimSweep,
                         ::testing::Combine(::testing::Values(3, 5), ::testing::Range(0, kShards)));

TEST(MemberSimRegression, EverySeedThatEverFailed) {
  std::ifstream in(CAIRN_MEMBER_SIM_REGRESSION_FILE);
  ASSERT_TRUE(in.good()) << "cannot read " << CAIRN_MEMBER_SIM_REGRESSION_FILE;
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    int members;
    uint64_t seed;
    if (!(fields >> members >> seed)) continue;
    RunSeed(members, seed, false);
    ++count;
  }
  EXPECT_GT(count, 0);
}

// Replays one seed with a trace: CAIRN_SIM_SEED (and CAIRN_SIM_MEMBERS). Without them it replays
// seed 1 on 3 members quietly, so the replay path itself is exercised in every run.
TEST(MemberSimReplay, Seed) {
  uint64_t seed = EnvOr("CAIRN_SIM_SEED", 0);
  bool chosen = seed != 0;
  RunSeed(static_cast<int>(EnvOr("CAIRN_SIM_MEMBERS", 3)), chosen ? seed : 1, chosen);
}

// The same seed twice gives the same run (the simulation is deterministic).
TEST(MemberSimReplay, SameSeedSameRun) {
  MemberSimOptions options;
  options.seed = 7;
  MemberSimResult a = RunMemberSimulation(options);
  MemberSimResult b = RunMemberSimulation(options);
  EXPECT_EQ(a.proposals, b.proposals);
  EXPECT_EQ(a.acknowledged, b.acknowledged);
  EXPECT_EQ(a.messages_delivered, b.messages_delivered);
  EXPECT_EQ(a.crashes, b.crashes);
  EXPECT_EQ(a.final_revision, b.final_revision);
  EXPECT_EQ(a.sim_ms, b.sim_ms);
}

}  // namespace
}  // namespace cairn::etcdserver::sim
