// A deterministic whole-cluster simulation of the Raft core (FoundationDB/TigerBeetle style).
//
// N members run RawNode over MemoryStorage in one thread. Time advances in ticks. A seeded
// network loses, duplicates, delays and reorders messages and applies symmetric and asymmetric
// partitions; members crash and restart keeping only what they persisted. Clients propose,
// read (ReadIndex), transfer leadership and change membership. After every step the
// simulation checks the safety invariants of Raft (paper Figure 3 plus the caller contract):
//   - Election Safety: at most one leader per term.
//   - Log Matching: an (index, term) pair identifies the entry and, recursively, the whole prefix.
//   - Leader Completeness: a new leader holds every entry known committed.
//   - State Machine Safety: every member applies the same entry at each index (hash chain, also
//     across snapshot installs).
//   - Commit and applied never move backwards; a committed entry is never lost or changed.
//   - Ready ordering: a granted vote and an acknowledged entry are durable before the reply
//     leaves; ReadIndex results are at least every index committed before the request.
// Then all faults are healed and liveness is checked: a leader emerges and a proposal commits on
// every member within a bound.
//
// Everything derives from the seed, so a failing seed replays exactly.
#pragma once

#include <cstdint>
#include <string>

namespace cairn::raft::sim {

struct SimOptions {
  int members = 3;
  uint64_t seed = 1;
  int chaos_ticks = 500;     // ticks with faults injected
  int liveness_ticks = 400;  // bound for a leader + commit after healing
  bool trace = false;        // print every event to stderr (for replaying a seed)
};

struct SimResult {
  bool ok = true;
  std::string failure;  // first violated invariant, with context
  uint64_t ticks = 0;
  uint64_t messages_delivered = 0;
  uint64_t entries_committed = 0;
  uint64_t leaders_elected = 0;
  uint64_t snapshots_installed = 0;
  uint64_t conf_changes_applied = 0;
  uint64_t reads_completed = 0;
  uint64_t crashes = 0;
};

// Runs one simulation. CAIRN_CHECK failures inside Raft abort the process; callers should make
// sure the seed is printed in that case (see CurrentSimSeed).
SimResult RunSimulation(const SimOptions& options);

// The seed of the simulation running now (for crash handlers).
uint64_t CurrentSimSeed();
int CurrentSimMembers();

}  // namespace cairn::raft::sim
