// The reliability driver (issue 16 items 2, 4, 5): a cluster of real server processes (cairn or
// etcd), the KV register workload on a small keyspace (Range, Put, CAS Txn, DeleteRange) from
// concurrent clients, watchers that resume across faults from their last revision + 1, and faults
// drawn from a seed (kill -9 with restart, SIGSTOP/SIGCONT). The recorded history goes to the
// checker (tests/history/checker.h). On an anomaly the history and the members' logs are kept in
// a directory named in the result.
//
// Run from one thread (the cluster's processes die with the thread that started them).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/harness/server_process.h"
#include "tests/history/checker.h"

namespace cairn::reliability {

// kKill: SIGKILL, then restart on the same data dir. kPause: SIGSTOP, then SIGCONT.
// kMember: membership change under load: remove a member, add a fresh one with an empty data dir
// (it catches up by snapshot when the log was compacted: --snapshot-count is low).
// kDisk (cairn only): restart a member with CAIRN_FAILPOINTS making its WAL fsync fail after a
// while (docs/failpoints.md); it must stop by itself; it is then restarted on a healthy disk.
// kPartition: cut the network between two sides for 1-3 s (partition.h; the process must be in a
// private network namespace): one member isolated (half the time the leader), a majority /
// minority split, or a bridge (two sides that both still reach one member).
enum class Fault { kKill, kPause, kMember, kDisk, kPartition };

struct RunOptions {
  testing::ServerKind kind = testing::ServerKind::kCairn;
  int members = 3;
  std::vector<Fault> faults = {Fault::kKill, Fault::kPause};
  int duration_ms = 10000;
  uint64_t seed = 1;
  int clients = 4;
  int watchers = 2;
  int keys = 8;
  // Passed as --snapshot-count (low, to force snapshots and snapshot sends); 0: the default.
  int snapshot_count = 100;
  // Where a failing run keeps history and logs; "" = a fresh directory under $TMPDIR.
  std::string keep_dir;
  // Tests of the driver itself: puts of keys outside the workload's prefix made halfway through
  // the run by a client of the driver's own that records nothing, as a process outside the run
  // reaching the cluster's ports would. The run must then fail naming them (outside_writes).
  int outside_writes = 0;
};

struct RunResult {
  history::Report report;
  int64_t operations = 0;  // recorded
  int faults_injected = 0;
  std::string kept_dir;  // set when the run failed
  std::string error;     // a harness failure (cluster did not start or recover), not an anomaly
  // Changes outside the workload's prefix seen by the keyspace observer (a watcher on every key
  // from revision 1, not part of the checked history), one line each: "revision N: PUT k=v".
  // Nothing in the run writes there, so any is a write by someone else: the run is void.
  std::vector<std::string> outside_writes;
  // For each revision the checker found no writer for: what the observer saw at it and what a
  // Range over every key at it and at the revision before differ by.
  std::vector<std::string> diagnosis;
  bool ok() const { return error.empty() && report.ok() && outside_writes.empty(); }
  std::string Summary() const;
};

// Parses "kill,pause" (names: kill, pause, member, disk, partition). Unknown names are an error
// string in *error.
std::vector<Fault> ParseFaults(const std::string& list, std::string* error);

RunResult RunRegisterWorkload(const RunOptions& options);

// Shared by the workloads (run on the thread that started the cluster):
// starts options.members members (heartbeat 50 ms, election 500 ms, --snapshot-count);
absl::StatusOr<std::unique_ptr<testing::ServerCluster>> StartCluster(const RunOptions& options);
// injects faults from options.seed until `deadline`, one at a time, each healed (restart, resume)
// before the next; a failed restart ends it with *error set;
void InjectFaults(const RunOptions& options, testing::ServerCluster& cluster,
                  std::chrono::steady_clock::time_point deadline, int& injected,
                  std::string& error);
// a pause (fault pacing, not a wait for a condition).
void SleepMs(int ms);

}  // namespace cairn::reliability
