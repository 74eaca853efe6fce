// The fault loop of the reliability workloads (workload.h, InjectFaults).
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "tests/harness/cluster_ops.h"
#include "tests/reliability/partition.h"
#include "tests/reliability/workload.h"

namespace cairn::reliability {
namespace {

constexpr int kDiskFailAfterSyncs = 300;
constexpr int kDiskExitWaitMs = 20000;

std::vector<int> LiveMembers(const testing::ServerCluster& cluster) {
  std::vector<int> live;
  for (int m = 0; m < cluster.size(); ++m) {
    if (!cluster.IsRemoved(m)) live.push_back(m);
  }
  return live;
}

std::vector<std::string> SnapshotArgs(const RunOptions& options) {
  if (options.snapshot_count <= 0) return {};
  return {absl::StrCat("--snapshot-count=", options.snapshot_count)};
}

// Removes `victim` through another member and adds a fresh member in its place. A change the
// cluster refuses (etcd's strict reconfig check while a member is catching up) is not an error.
absl::Status ReplaceMember(const RunOptions& options, testing::ServerCluster& cluster, int victim,
                           int via) {
  absl::StatusOr<uint64_t> id = testing::MemberId(cluster, victim);
  if (!id.ok()) return absl::OkStatus();
  if (!testing::RemoveMember(cluster.ClientEndpoint(via), *id).ok()) return absl::OkStatus();
  cluster.MarkRemoved(victim);
  absl::StatusOr<int> fresh = cluster.PrepareMember(SnapshotArgs(options));
  if (!fresh.ok()) return fresh.status();
  // Retried (up to 20 s): right after a removal, or while a member catches up, the cluster refuses
  // another change ("etcdserver: unhealthy cluster").
  absl::Status added = absl::UnavailableError("not tried");
  for (int attempt = 0; attempt < 80 && !added.ok(); ++attempt) {
    added =
        testing::AddMember(cluster.ClientEndpoint(via), cluster.PeerUrl(*fresh), false).status();
    if (!added.ok()) SleepMs(250);
  }
  if (!added.ok())
    return absl::InternalError(absl::StrCat("member add after removal: ", added.ToString()));
  return cluster.StartAddedMember(*fresh);
}

// Restarts `member` on a disk whose WAL fsync fails after a while: it must stop by itself with
// the failpoint's message; then it is restarted on a healthy disk.
absl::Status DiskFault(testing::ServerCluster& cluster, int member) {
  cluster.Kill(member);
  ::setenv("CAIRN_FAILPOINTS", absl::StrCat("fsync=error@after:", kDiskFailAfterSyncs).c_str(), 1);
  absl::Status started = cluster.Restart(member);
  ::unsetenv("CAIRN_FAILPOINTS");
  if (started.ok()) {
    absl::StatusOr<int> exit_code = cluster.WaitExit(member, kDiskExitWaitMs);
    std::cerr << "  disk fault: member " << member
              << (exit_code.ok() ? absl::StrCat(" stopped by itself, exit code ", *exit_code)
                                 : std::string(" did not reach the failpoint"))
              << std::endl;
    if (!exit_code.ok()) cluster.Kill(member);  // load too light to reach the failpoint
  }
  if (cluster.IsRunning(member)) cluster.Kill(member);
  if (!started.ok() &&
      cluster.LogTail(member).find("injected by CAIRN_FAILPOINTS") == std::string::npos) {
    return started;
  }
  return cluster.Restart(member);
}

// Picks two sides to cut among the live members and cuts them for a while, then heals.
absl::Status PartitionFault(testing::ServerCluster& cluster, Partitioner& partitioner,
                            const std::vector<int>& live, std::mt19937_64& rng, int hold_ms) {
  std::vector<int> a;
  std::vector<int> b;
  std::vector<int> shuffled = live;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const char* kind = "";
  switch (rng() % 3) {
    case 0: {  // isolate one member, half the time the leader
      int victim = shuffled[0];
      if (rng() % 2 == 0) {
        absl::StatusOr<int> leader = testing::WaitForLeader(cluster, 2000);
        if (leader.ok()) victim = *leader;
      }
      a = {victim};
      for (int m : live) {
        if (m != victim) b.push_back(m);
      }
      kind = "isolate";
      break;
    }
    case 1: {  // majority / minority
      const size_t minority = (shuffled.size() - 1) / 2;
      a.assign(shuffled.begin(),
               shuffled.begin() + static_cast<std::ptrdiff_t>(std::max<size_t>(minority, 1)));
      b.assign(shuffled.begin() + static_cast<std::ptrdiff_t>(a.size()), shuffled.end());
      kind = "minority/majority";
      break;
    }
    default: {  // bridge: shuffled[0] reaches both sides, the sides do not reach each other
      const size_t rest = shuffled.size() - 1;
      const size_t left = std::max<size_t>(1, rest / 2);
      a.assign(shuffled.begin() + 1, shuffled.begin() + 1 + static_cast<std::ptrdiff_t>(left));
      b.assign(shuffled.begin() + 1 + static_cast<std::ptrdiff_t>(left), shuffled.end());
      kind = "bridge";
      break;
    }
  }
  if (a.empty() || b.empty()) return absl::OkStatus();
  std::cerr << "  partition (" << kind << "): {";
  for (int m : a) std::cerr << " " << m;
  std::cerr << " } | {";
  for (int m : b) std::cerr << " " << m;
  std::cerr << " }" << std::endl;
  if (absl::Status s = partitioner.Cut(cluster, a, b); !s.ok()) return s;
  SleepMs(hold_ms);
  return partitioner.Heal();
}

}  // namespace

void InjectFaults(const RunOptions& options, testing::ServerCluster& cluster,
                  std::chrono::steady_clock::time_point deadline, int& injected,
                  std::string& error) {
  std::mt19937_64 rng(options.seed);
  std::unique_ptr<Partitioner> partitioner;
  if (std::find(options.faults.begin(), options.faults.end(), Fault::kPartition) !=
      options.faults.end()) {
    absl::StatusOr<std::unique_ptr<Partitioner>> created = Partitioner::Create();
    if (!created.ok()) {
      error = absl::StrCat("partition faults unavailable: ", created.status().ToString());
      return;
    }
    partitioner = std::move(*created);
  }
  while (std::chrono::steady_clock::now() < deadline && !options.faults.empty()) {
    SleepMs(300 + static_cast<int>(rng() % 900));
    const Fault fault = options.faults[rng() % options.faults.size()];
    const std::vector<int> live = LiveMembers(cluster);
    const int member = live[rng() % live.size()];
    const int other =
        live[(std::find(live.begin(), live.end(), member) - live.begin() + 1) % live.size()];
    const int hold_ms = 200 + static_cast<int>(rng() % 1000);
    ++injected;
    static const char* const kNames[] = {"kill", "pause", "member", "disk", "partition"};
    std::cerr << "fault " << injected << ": " << kNames[static_cast<int>(fault)] << " member "
              << member << " (hold " << hold_ms << " ms)" << std::endl;
    absl::Status status;
    switch (fault) {
      case Fault::kKill:
        cluster.Kill(member);
        SleepMs(hold_ms);
        status = cluster.Restart(member);
        break;
      case Fault::kPause:
        cluster.Pause(member);
        SleepMs(hold_ms);
        cluster.Resume(member);
        break;
      case Fault::kMember:
        if (live.size() > 1) status = ReplaceMember(options, cluster, member, other);
        break;
      case Fault::kPartition:
        status = PartitionFault(cluster, *partitioner, live, rng, 1000 + 2 * hold_ms);
        break;
      case Fault::kDisk:
        if (options.kind != testing::ServerKind::kCairn) {
          status = absl::InvalidArgumentError("the disk fault needs cairn (CAIRN_FAILPOINTS)");
        } else {
          status = DiskFault(cluster, member);
        }
        break;
    }
    if (!status.ok()) {
      error = absl::StrCat("fault on member ", member, ": ", status.ToString(), "\n",
                           cluster.LogTail(member));
      return;
    }
  }
}

}  // namespace cairn::reliability
