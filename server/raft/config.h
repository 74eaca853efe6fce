// Configuration of one Raft member, and the seedable random source for election jitter.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "server/base/rng.h"
#include "server/raft/storage.h"
#include "server/raft/types.h"

namespace cairn::raft {

// The election jitter's random source (server/base/rng.h). The core draws only from the Rng it is
// given, so a simulation that seeds every member replays exactly.
using base::Rng;

struct Config {
  // This member's id; not 0.
  MemberId id = kNoMember;

  // Ticks without hearing from a leader before a follower campaigns; the actual timeout is drawn
  // uniformly from [election_tick, 2 * election_tick) on every term change (§5.2, randomized
  // election timeouts). Must be greater than heartbeat_tick; 10x is customary.
  int election_tick = 10;
  // Ticks between leader heartbeats.
  int heartbeat_tick = 1;

  // The durable log; must outlive the RawNode. Its InitialState gives term, vote, commit and the
  // configuration at the snapshot.
  const Storage* storage = nullptr;
  // Last index the caller's state machine has applied (on restart). Committed entries after it
  // are returned again. Must be >= the storage's snapshot index and <= the stored commit.
  LogIndex applied = 0;

  // Flow control and memory bounds (Principle 4, "bounded everything"):
  // Max payload bytes per append message (at least one entry is always sent). Default 1 MiB.
  uint64_t max_size_per_msg = 1 << 20;
  // Max payload bytes of committed entries in one Ready. Default 16 MiB.
  uint64_t max_committed_size_per_ready = 16 << 20;
  // Max payload bytes of entries the leader holds uncommitted; proposals beyond it fail with
  // ResourceExhausted. A proposal is always accepted when nothing is uncommitted. Default 64 MiB.
  uint64_t max_uncommitted_entries_size = 64 << 20;
  // Max append messages in flight to one follower in replicate state. Default 256.
  size_t max_inflight_msgs = 256;
  // Max payload bytes in flight to one follower. Default 32 MiB.
  uint64_t max_inflight_bytes = 32 << 20;

  // Leader steps down when it has not heard from a quorum for an election timeout, and followers
  // ignore votes while they hear from a leader (thesis §6.2). Default on.
  bool check_quorum = true;
  // Candidates first run a PreVote round without bumping their term (thesis §9.6). Default on.
  bool pre_vote = true;

  // Seed of the election-timeout jitter. Give each member (and each restart) a different seed
  // in production; a simulation derives it from its seed.
  uint64_t random_seed = 0;

  absl::Status Validate() const;
};

}  // namespace cairn::raft
