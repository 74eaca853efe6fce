// RawNode: the public API of the Raft core, a pure state machine driven by its caller.
//
// The caller owns time, I/O and threads. It feeds inputs (Tick, Step, Propose, ...) and
// collects outputs in batches with GetReady/Advance. Typical driver loop (one thread):
//
//   RawNode node = *RawNode::Create(config);
//   loop:
//     on timer:          node.Tick();
//     on peer message:   node.Step(msg);
//     on client request: node.Propose(data) / ProposeConfChange / ReadIndex / TransferLeader;
//     while (node.HasReady()) {
//       Ready rd = node.GetReady();
//       1. persist: if (!rd.snapshot.IsEmpty()) install it in storage;
//                   append rd.entries to storage; if (rd.hard_state) save it  -- then fsync
//       2. send rd.messages to their `to` members
//       3. apply rd.snapshot (if any) then rd.committed_entries, in order, to the state
//          machine; for kConfChange entries call node.ApplyConfChange(cc)
//       4. serve rd.read_states once the applied index reaches their index
//       node.Advance(rd);
//     }
//
// Ordering rules (checked: Advance CHECK-fails if storage does not reflect the Ready):
//   R1. rd.hard_state, rd.entries and rd.snapshot must be durable before any of rd.messages is
//       sent: a vote (§5.2) and an acknowledged entry (§5.3) must survive a crash.
//   R2. rd.entries are appended after rd.snapshot is installed, and replace any stored entries
//       at the same or higher indexes (a follower's conflicting suffix).
//   R3. rd.committed_entries may be applied only after step 1 (they can include rd.entries).
//   R4. Exactly one Ready is outstanding: call Advance(rd) before the next GetReady. Inputs
//       (Tick, Step, Propose, ...) may be given between GetReady and Advance.
// Exception to R1 (thesis §10.2.1): a leader may send its kApp and kHeartbeat messages before
// the Ready is durable, provided (a) its commit index (raft().hard_state().commit) does not
// exceed its durably stored last index, and (b) the caller steps no input until the Ready is
// durable. Raft counts the leader's own entries toward commit at append, so without (a) a lone
// voter could tell a learner to apply an entry the leader then loses in a crash; (b) keeps
// acknowledgements of the early messages from committing entries the leader has not synced.
//
// Thread safety: not thread-safe. One thread (the raft driver) owns the RawNode.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/raft/config.h"
#include "server/raft/message.h"
#include "server/raft/raft.h"

namespace cairn::raft {

// One batch of work for the caller. See the ordering rules above.
struct Ready {
  // Set when leader or role changed since the last Ready. Volatile; never persisted.
  std::optional<SoftState> soft_state;
  // Set when term, vote or commit changed: persist before sending messages (R1).
  std::optional<HardState> hard_state;
  // Results of ReadIndex requests, in request order.
  std::vector<ReadState> read_states;
  // Entries to append to storage before sending messages (R1, R2).
  std::vector<Entry> entries;
  // A snapshot from the leader to install in storage and state machine (if !IsEmpty()).
  Snapshot snapshot;
  // Entries to apply, in index order, after persisting (R3).
  std::vector<Entry> committed_entries;
  // Messages to send after persisting (R1). Delivery may fail, repeat or reorder: Raft copes.
  std::vector<Message> messages;
  // True if hard state or entries must be fsynced (false when only commit moved).
  bool must_sync = false;
};

struct ProgressStatus {
  LogIndex match = 0;
  LogIndex next = 0;
  ProgressState state = ProgressState::kProbe;
  bool is_learner = false;
  bool recent_active = false;
};

struct NodeStatus {
  MemberId id = kNoMember;
  HardState hard_state;
  SoftState soft_state;
  LogIndex applied = 0;
  MemberId lead_transferee = kNoMember;
  ConfState conf_state;
  std::map<MemberId, ProgressStatus> progress;  // leader only
};

class RawNode {
 public:
  // InvalidArgument if the config is invalid. The storage's state decides between a fresh
  // member (empty storage: bootstrap with MemoryStorage(ConfState) or equivalent) and a restart.
  static absl::StatusOr<std::unique_ptr<RawNode>> Create(const Config& config);

  // Advances logical time by one tick (the caller's election/heartbeat clock).
  void Tick();
  // Starts an election now (skips the election timeout; PreVote still applies).
  absl::Status Campaign();
  // Proposes `data` for the log. On a follower the proposal is forwarded to the leader (and may
  // be lost like any message; callers time out and retry). Errors: Unavailable "no leader" /
  // "leadership transfer in progress" / "removed"; ResourceExhausted over
  // max_uncommitted_entries_size. OK means accepted locally, not committed.
  absl::Status Propose(std::string data);
  // Proposes several commands as consecutive entries in one step: one append on the leader, one
  // forwarded message on a follower. All are accepted or none; errors as Propose.
  absl::Status ProposeBatch(std::vector<std::string> datas);
  // Proposes a single-member configuration change (see docs/raft.md, "Membership changes").
  // Additionally FailedPrecondition while an earlier change is not yet committed, and
  // InvalidArgument if the change is invalid against the current configuration (checked
  // on the leader; a forwarded invalid change is dropped there).
  absl::Status ProposeConfChange(const ConfChange& cc);
  // Call when applying a committed kConfChange entry; returns the configuration as of that entry
  // (save it with snapshots taken at or after it). Raft itself already uses each configuration
  // from the moment it is in the log (thesis §4.1), so this only tracks the applied view.
  ConfState ApplyConfChange(const ConfChange& cc);
  // Delivers a message from a peer. InvalidArgument for local-only message types.
  absl::Status Step(const Message& m);
  // Requests a linearizable read point; the result arrives as a ReadState with the same
  // `ctx` (which must be non-empty and unique among outstanding requests). Unavailable if
  // there is no leader. Requests lost with a leader change never complete: time out and retry.
  absl::Status ReadIndex(std::string ctx);
  // Asks the leader to hand leadership to `transferee` (thesis §3.10). Ignored if it is not a
  // voter; abandoned after an election timeout.
  void TransferLeader(MemberId transferee);
  // Transport feedback: a message to `id` failed, or a snapshot send finished/failed.
  void ReportUnreachable(MemberId id);
  void ReportSnapshot(MemberId id, bool failure);

  bool HasReady() const;
  // Returns the pending batch. Requires no Ready outstanding (R4).
  Ready GetReady();
  // Acknowledges that `rd` was handled per the rules above; CHECK-fails if storage does not
  // hold rd.entries, rd.hard_state and rd.snapshot.
  void Advance(const Ready& rd);

  NodeStatus GetStatus() const;
  const Raft& raft() const { return raft_; }
  Raft& mutable_raft_for_testing() { return raft_; }

 private:
  RawNode(const Config& config, HardState initial_hard_state, ConfState initial_conf);

  Config config_;
  Raft raft_;
  SoftState prev_soft_state_;
  HardState prev_hard_state_;
  ConfState applied_conf_state_;
  bool ready_outstanding_ = false;
};

}  // namespace cairn::raft
