// A deterministic simulation of whole cairn members (FoundationDB/TigerBeetle style), the
// member-level sibling of cluster_sim.h (which runs the bare Raft core).
//
// Model. 3 to 5 members run in one thread from one seed. Each member is the core of a Server
// (server/etcdserver/server.cc, CreateCore): a RaftDriver over a WAL on a FaultInjectionEnv (one
// per member, kept across restarts), an Applier, a KvStore on the RocksDB Backend (a directory
// under /dev/shm, or the temp dir), Membership, a WatchHub, a Lessor and a WaitRegistry. The
// driver and the applier are stepped (RaftDriver::StartStepped/RunOnce, Applier::RunQueued) on the
// simulation's thread, and read a simulated clock that only the simulation advances (in steps of
// kStepMs). The lease timer, the membership admin thread, the forwarder, the read pool and the
// gRPC transport are not part of a simulated member. Background threads that remain (RocksDB's,
// the store's compactor, the watch hub's syncer) do not change what the members compute.
//
// Network. The drivers send through a simulated network: every message gets a seeded delay
// (which reorders them), may be lost or duplicated, and is dropped on a cut link. Partitions cut
// members into two sides (symmetric) or cut single directions (asymmetric). A kSnap message
// carries, as production's transport does, the sender's state-machine dump made when it is sent
// (storage::ExportSnapshot, in memory); on delivery it is written to a file in the receiver's
// snapshot directory and handed to RaftDriver::StepSnapshot, like the transport's verified file.
//
// Crashes. A crash destroys the member's objects without a clean stop and then calls
// FaultInjectionEnv::SimulateCrash: WAL bytes and directory changes not synced are lost (all of
// them, or a seeded prefix with a torn last write). Some crashes are scheduled instead to happen
// at the n-th WAL sync from now (FaultInjectionEnv::ScheduleCrash): the member is treated as dead
// from that sync on (its later messages never leave, its queued applies never run). RocksDB
// writes are unsynced (Backend::Write) and synced only by Backend::Sync (before a raft snapshot's
// WAL marker, and by a snapshot install). A crash either keeps every write the store was given (a
// process crash: RocksDB's own WAL reaches the OS before a write returns) or, in half of the
// seeds and there for half of the crashes, rolls the store back to its last Backend::Sync (a
// power failure losing RocksDB's unsynced WAL tail; the simulation keeps a RocksDB checkpoint
// taken after every sync through Backend::SetAfterSyncHookForTesting). Intermediate prefixes of
// the unsynced writes are not modelled. The applied index is in the same RocksDB batch as the
// entry's data, so a restarted member replays the WAL from its last snapshot marker and the
// applier skips what the store already holds. A restart reopens everything from the Env and the
// directory.
//
// Clients. Puts, single-key DeleteRanges and Txns (compare a value, then put one key or another)
// over a few keys are proposed through RaftDriver::Propose with a Waiter, as Server::Propose does,
// at random live members. An answer with an OK status is an acknowledgement. In half of the seeds
// the leader is also asked to transfer leadership (RaftDriver::TransferLeader, as MoveLeader).
//
// Checks, after every step: at most one leader per term; a member's lone-voter read index
// (RaftDriver::LocalReadIndex), when set, covers every member's committed entries; each member
// hands the applier entries with consecutive indexes (after its store's applied index at open, or
// after an installed snapshot), never hands it again an entry it applied before a restart unless
// the store was rolled back past it, the store is never behind the WAL's snapshot marker at a
// restart, and every member handles the same entry at each index. Then all faults are healed;
// within a bound every member must have applied a final write, and then:
//   - every acknowledged write survives on every member: the key holds the written value at the
//     acknowledged revision (history is never compacted here), a delete left no key, and a Txn's
//     compare saw at revision - 1 what its answer says;
//   - no two acknowledgements share a revision;
//   - every member has the same revision, applied index and KV hash (the FNV-1a of the store's
//     replicated dump, storage::ExportSnapshot, i.e. what a snapshot would carry).
//
// Replay: everything derives from the seed, so a failing seed replays exactly; `trace` prints every
// event. tests/sim/member_sim_test.cc runs the sweep and the replay (see docs/testing.md).
#pragma once

#include <cstdint>
#include <string>

namespace cairn::etcdserver::sim {

struct MemberSimOptions {
  int members = 3;
  uint64_t seed = 1;
  int64_t chaos_ms = 20000;     // simulated time with faults injected
  int64_t liveness_ms = 30000;  // bound for every member to apply a final write after healing
  bool trace = false;           // print every event to stderr (for replaying a seed)
};

struct MemberSimResult {
  bool ok = true;
  std::string failure;  // the first violated check, with context
  int64_t sim_ms = 0;
  uint64_t proposals = 0;
  uint64_t acknowledged = 0;
  uint64_t messages_delivered = 0;
  uint64_t crashes = 0;
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_installed = 0;
  uint64_t leader_changes = 0;
  uint64_t transfers = 0;  // leadership transfers that completed
  int64_t final_revision = 0;
};

// Runs one simulation. A CAIRN_CHECK failure inside a member aborts the process; callers print
// CurrentMemberSimSeed() then (member_sim_test.cc installs a SIGABRT handler).
MemberSimResult RunMemberSimulation(const MemberSimOptions& options);

uint64_t CurrentMemberSimSeed();
int CurrentMemberSimMembers();

}  // namespace cairn::etcdserver::sim
