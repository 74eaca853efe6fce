// The leader's view of each member's log (Figure 2, "volatile state on leaders": nextIndex and
// matchIndex), with flow control, and the voter/learner configuration with its quorum rules.
//
// A follower's progress is in one of three states:
//   kProbe:     the leader does not know where the follower's log matches; it sends at most one
//               append per heartbeat interval and backs up on rejection (§5.3).
//   kReplicate: the log matches up to `match`; appends are pipelined optimistically (next moves
//               ahead of match), bounded by Inflights (count and bytes).
//   kSnapshot:  the follower needs a snapshot (§7); nothing is sent until it is reported done.
// Thread safety: owned by the thread that owns the RawNode.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "server/raft/message.h"
#include "server/raft/types.h"

namespace cairn::raft {

// Bounded window of append messages sent but not yet acknowledged by one follower.
class Inflights {
 public:
  Inflights(size_t max_count, uint64_t max_bytes) : max_count_(max_count), max_bytes_(max_bytes) {}

  // Records an append whose last entry is `last_index`, carrying `bytes` of payload. Requires
  // !Full() and last_index greater than any recorded before.
  void Add(LogIndex last_index, uint64_t bytes);
  // Frees every append whose last index is <= index (acknowledged).
  void FreeLE(LogIndex index);
  // Frees the oldest append (used when a heartbeat shows the follower is alive but the window
  // is stuck full, e.g. because an append was lost).
  void FreeFirstOne();
  bool Full() const { return window_.size() >= max_count_ || bytes_ >= max_bytes_; }
  size_t count() const { return window_.size(); }
  uint64_t bytes() const { return bytes_; }
  void Reset();

 private:
  size_t max_count_;
  uint64_t max_bytes_;
  std::deque<std::pair<LogIndex, uint64_t>> window_;
  uint64_t bytes_ = 0;
};

enum class ProgressState { kProbe, kReplicate, kSnapshot };
std::string_view ProgressStateName(ProgressState state);

struct Progress {
  Progress(LogIndex next_index, size_t max_inflight_msgs, uint64_t max_inflight_bytes)
      : next(next_index), inflights(max_inflight_msgs, max_inflight_bytes) {}

  LogIndex match = 0;  // highest index known to be replicated on the member
  LogIndex next = 1;   // next index to send
  ProgressState state = ProgressState::kProbe;
  LogIndex pending_snapshot = 0;     // kSnapshot: index of the snapshot sent
  bool recent_active = false;        // heard from since the last CheckQuorum
  bool msg_app_flow_paused = false;  // kProbe: an append is outstanding
  bool is_learner = false;
  Inflights inflights;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(LogIndex snapshot_index);
  // An acknowledgement of index n: returns false if it is stale (n <= match already).
  bool MaybeUpdate(LogIndex n);
  // Handles a rejection of the append after `rejected` with hint `match_hint`; returns false if
  // the rejection is stale and must be ignored.
  bool MaybeDecrTo(LogIndex rejected, LogIndex match_hint);
  // Bookkeeping after sending an append with `entries` entries ending at `last_index`.
  void SentEntries(size_t entries, LogIndex last_index, uint64_t bytes);
  // True when no append should be sent now (flow control).
  bool IsPaused() const;
};

// Configuration plus per-member progress. Votes are tallied here too.
class ProgressTracker {
 public:
  ProgressTracker(size_t max_inflight_msgs, uint64_t max_inflight_bytes)
      : max_inflight_msgs_(max_inflight_msgs), max_inflight_bytes_(max_inflight_bytes) {}

  // Makes `cs` the configuration: new members start with next = next_index, match = 0, active;
  // members not in `cs` are dropped.
  void ApplyConfState(const ConfState& cs, LogIndex next_index);
  ConfState conf_state() const;

  bool IsVoter(MemberId id) const { return voters_.contains(id); }
  const std::set<MemberId>& voters() const { return voters_; }
  std::map<MemberId, Progress>& progress() { return progress_; }
  const std::map<MemberId, Progress>& progress() const { return progress_; }
  Progress* Find(MemberId id);

  // Highest index replicated on a majority of voters (§5.3), by their match indexes.
  LogIndex QuorumCommitted() const;
  // True if a majority of voters were recently active (thesis §6.2 CheckQuorum).
  bool QuorumActive() const;
  // True if `acks` contains a majority of voters.
  bool IsQuorum(const std::set<MemberId>& acks) const;

  enum class VoteResult { kPending, kLost, kWon };
  void ResetVotes() { votes_.clear(); }
  // Records the first vote from `id` (later ones are ignored).
  void RecordVote(MemberId id, bool granted);
  VoteResult TallyVotes(size_t* granted, size_t* rejected) const;

 private:
  size_t max_inflight_msgs_;
  uint64_t max_inflight_bytes_;
  std::set<MemberId> voters_;
  std::set<MemberId> learners_;
  std::map<MemberId, Progress> progress_;
  std::map<MemberId, bool> votes_;
};

}  // namespace cairn::raft
