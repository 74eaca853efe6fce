// Deterministic cluster simulation sweep (docs/raft.md, "Simulation").
//
//   CAIRN_SIM_SEEDS=N        seeds per cluster size (3 and 5 members); default 1000
//   CAIRN_SIM_SEED_START=S   first seed; default 1
//   CAIRN_SIM_SEED=S         replay one seed with a full trace (CAIRN_SIM_MEMBERS=3|5, default 3)
//
// Every seed that ever failed goes into regression_seeds.txt, which SimRegression always runs.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/sim/cluster_sim.h"

namespace cairn::raft::sim {
namespace {

constexpr int kShards = 4;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::strtoull(v, nullptr, 10);
}

std::string ReplayHint(int members, uint64_t seed) {
  std::ostringstream os;
  os << "replay: CAIRN_SIM_SEED=" << seed << " CAIRN_SIM_MEMBERS=" << members
     << " raft_sim_test --gtest_filter='SimReplay.*'";
  return os.str();
}

// A CAIRN_CHECK inside Raft aborts the process: print the seed on the way down.
void OnAbort(int) {
  char buf[160];
  int n = snprintf(buf, sizeof(buf),
                   "\n*** simulation aborted: seed=%llu members=%d (CAIRN_SIM_SEED=%llu "
                   "CAIRN_SIM_MEMBERS=%d replays it)\n",
                   static_cast<unsigned long long>(CurrentSimSeed()), CurrentSimMembers(),
                   static_cast<unsigned long long>(CurrentSimSeed()), CurrentSimMembers());
  if (n > 0) (void)!write(2, buf, static_cast<size_t>(n));
  std::signal(SIGABRT, SIG_DFL);
}

class AbortHandlerEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { std::signal(SIGABRT, OnAbort); }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new AbortHandlerEnvironment);

void RunSeed(int members, uint64_t seed, bool trace) {
  SimOptions options;
  options.members = members;
  options.seed = seed;
  options.trace = trace;
  SimResult r = RunSimulation(options);
  if (!r.ok) {
    ADD_FAILURE() << "simulation failed: seed=" << seed << " members=" << members << ": "
                  << r.failure << "\n  " << ReplayHint(members, seed) << "\n  then add \""
                  << members << " " << seed << "\" to tests/sim/regression_seeds.txt";
  }
  if (trace) {
    std::cerr << "ticks " << r.ticks << " delivered " << r.messages_delivered << " committed "
              << r.entries_committed << " leaders " << r.leaders_elected << " snapshots "
              << r.snapshots_installed << " conf_changes " << r.conf_changes_applied << " reads "
              << r.reads_completed << " crashes " << r.crashes << "\n";
  }
}

class SimSweep : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(SimSweep, Seeds) {
  auto [members, shard] = GetParam();
  uint64_t seeds = EnvOr("CAIRN_SIM_SEEDS", 1000);
  uint64_t start = EnvOr("CAIRN_SIM_SEED_START", 1);
  int failures = 0;
  for (uint64_t seed = start + shard; seed < start + seeds; seed += kShards) {
    RunSeed(members, seed, false);
    if (::testing::Test::HasFailure() && ++failures >= 5) break;  // enough to start debugging
  }
}

INSTANTIATE_TEST_SUITE_P(Sim, SimSweep,
                         ::testing::Combine(::testing::Values(3, 5), ::testing::Range(0, kShards)));

TEST(SimRegression, EverySeedThatEverFailed) {
  std::ifstream in(CAIRN_SIM_REGRESSION_FILE);
  ASSERT_TRUE(in.good()) << "cannot read " << CAIRN_SIM_REGRESSION_FILE;
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
TEST(SimReplay, Seed) {
  uint64_t seed = EnvOr("CAIRN_SIM_SEED", 0);
  bool chosen = seed != 0;
  RunSeed(static_cast<int>(EnvOr("CAIRN_SIM_MEMBERS", 3)), chosen ? seed : 1, chosen);
}

}  // namespace
}  // namespace cairn::raft::sim
