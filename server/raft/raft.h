// The Raft state machine for one member (Raft paper §5-§7, thesis §3.10, §4, §6, §9.6).
//
// Raft is deterministic: its only inputs are Step (a message), Tick (a unit of logical time) and
// the Storage it reads; its outputs are accumulated in memory (messages to send, read states)
// and observed through accessors. RawNode wraps it with the Ready/Advance protocol; most callers
// should use RawNode. Tests use Raft directly to drive paper-rule scenarios.
//
// Thread safety: not thread-safe; owned by one thread.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "server/raft/config.h"
#include "server/raft/message.h"
#include "server/raft/progress.h"
#include "server/raft/raft_log.h"

namespace cairn::raft {

enum class StateType { kFollower, kCandidate, kLeader, kPreCandidate };
std::string_view StateTypeName(StateType state);

// Volatile state useful to the caller (not persisted).
struct SoftState {
  MemberId leader = kNoMember;
  StateType state = StateType::kFollower;
  bool operator==(const SoftState&) const = default;
};

// The result of a ReadIndex request: once the state machine has applied `index`, a read made
// then reflects every write committed before the request (thesis §6.4).
struct ReadState {
  LogIndex index = 0;
  std::string request_ctx;
  bool operator==(const ReadState&) const = default;
};

// The context of a kVote/kPreVote sent because of leadership transfer: such a vote is granted
// even inside a leader lease (thesis §3.10).
inline constexpr std::string_view kCampaignTransfer = "CampaignTransfer";

class Raft {
 public:
  // CHECK-fails on an invalid config or unreadable storage (programmer errors at startup).
  explicit Raft(const Config& config);

  // Processes one message (from a peer, or a local one). Errors are returned only for requests
  // made by this member's caller (proposals, read index) that cannot be served: Unavailable (no
  // leader, leadership transfer in progress, removed from the cluster), ResourceExhausted
  // (uncommitted bytes over the limit), FailedPrecondition (a conf change is pending),
  // InvalidArgument (an invalid conf change). Messages from peers never produce errors; stale
  // or unexpected ones are dropped.
  absl::Status Step(const Message& m);
  // Advances logical time by one tick: election timeout for followers and candidates,
  // heartbeats and quorum checks for the leader.
  void Tick();

  // Caller-facing helpers used by RawNode.
  absl::Status Propose(std::vector<Entry> entries);
  void ReportApplied(LogIndex applied);  // entries up to `applied` were handed to the caller
  // Committed entries were handed out: they no longer count against the uncommitted limit.
  void ReduceUncommittedSize(const std::vector<Entry>& committed);

  // Outputs.
  std::vector<Message> TakeMessages() { return std::exchange(msgs_, {}); }
  const std::vector<Message>& messages() const { return msgs_; }
  std::vector<ReadState> TakeReadStates() { return std::exchange(read_states_, {}); }
  const std::vector<ReadState>& read_states() const { return read_states_; }

  // Accessors.
  MemberId id() const { return id_; }
  Term term() const { return term_; }
  MemberId vote() const { return vote_; }
  MemberId leader() const { return lead_; }
  StateType state() const { return state_; }
  HardState hard_state() const { return HardState{term_, vote_, log_.committed()}; }
  SoftState soft_state() const { return SoftState{lead_, state_}; }
  RaftLog& log() { return log_; }
  const RaftLog& log() const { return log_; }
  ProgressTracker& tracker() { return tracker_; }
  const ProgressTracker& tracker() const { return tracker_; }
  // The configuration in effect: the latest one in the log, committed or not (thesis §4.1).
  ConfState conf_state() const { return tracker_.conf_state(); }
  MemberId lead_transferee() const { return lead_transferee_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  int election_elapsed() const { return election_elapsed_; }
  const Config& config() const { return config_; }
  LogIndex pending_conf_index() const { return pending_conf_index_; }
  uint64_t uncommitted_size() const { return uncommitted_size_; }
  // True if this member may campaign: it is a voter in its latest configuration.
  bool Promotable() const { return tracker_.IsVoter(id_); }

  // Transitions (public for tests that set up scenarios).
  void BecomeFollower(Term term, MemberId lead);
  void BecomeCandidate();
  void BecomePreCandidate();
  void BecomeLeader();

 private:
  enum class CampaignType { kPreElection, kElection, kTransfer };

  void StepLeader(const Message& m, absl::Status* result);
  void StepCandidate(const Message& m, absl::Status* result);
  void StepFollower(const Message& m, absl::Status* result);
  void HandleVoteRequest(const Message& m);
  void Hup(CampaignType type);
  void Campaign(CampaignType type);
  void Reset(Term term);
  void ResetRandomizedElectionTimeout();
  void TickElection();
  void TickHeartbeat();

  void Send(Message m);
  bool MaybeSendAppend(MemberId to, bool send_if_empty);
  void SendAppend(MemberId to) { MaybeSendAppend(to, true); }
  void BroadcastAppend();
  void SendHeartbeat(MemberId to, const std::string& ctx);
  void BroadcastHeartbeat(const std::string& ctx);
  void SendTimeoutNow(MemberId to);
  void AbortLeaderTransfer() { lead_transferee_ = kNoMember; }

  void HandleAppendEntries(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  bool Restore(const Snapshot& snapshot);

  // Appends entries as leader (assigning term and index); false if over the uncommitted limit.
  bool AppendEntries(std::vector<Entry>* entries);
  // Commits by the quorum's match indexes (§5.3, §5.4.2); on progress, also finishes a pending
  // self-removal and releases reads waiting for a current-term commit.
  bool MaybeCommit();
  bool CommittedEntryInCurrentTerm() const;

  // Configuration tracking (thesis §4.1: a member uses the latest configuration in its log).
  void OnEntriesWritten(LogIndex from, const std::vector<Entry>& entries);
  void FoldCommittedConfigs();
  void SwitchToConfig(const ConfState& cs);
  // The configuration at the end of the log, committed or not (what a new change is checked
  // against).
  ConfState LatestConfig() const;
  // The configuration in use (the tracker's): LatestConfig(), except that a change growing a
  // lone voter to two voters takes effect only once committed (docs/raft.md, rule 1a).
  ConfState EffectiveConfig() const;
  static bool TakesEffectAtCommit(const ConfState& before, const ConfState& after);

  // ReadIndex (thesis §6.4).
  void HandleReadIndex(const Message& m);
  void AddReadRequest(const Message& m);
  void RecvHeartbeatAck(MemberId from, const std::string& ctx);
  void RespondToRead(const Message& req, LogIndex index);
  void ReleasePendingReadIndexMessages();

  Config config_;
  MemberId id_;
  Term term_ = 0;
  MemberId vote_ = kNoMember;
  MemberId lead_ = kNoMember;
  StateType state_ = StateType::kFollower;
  RaftLog log_;
  ProgressTracker tracker_;
  Rng rng_;

  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;

  MemberId lead_transferee_ = kNoMember;
  // Index of the latest conf change proposed by this leader (or its first entry of the term);
  // a new conf change is accepted only once this is committed (thesis §4.1, and the fix for
  // single-server changes across leader changes: Ongaro, raft-dev 2015).
  LogIndex pending_conf_index_ = 0;
  uint64_t uncommitted_size_ = 0;

  // Configuration as of index config_base_index_ (committed), then every uncommitted
  // conf-change entry in the log with the configuration it produces.
  ConfState config_base_;
  LogIndex config_base_index_ = 0;
  std::vector<std::pair<LogIndex, ConfState>> config_uncommitted_;

  // ReadIndex state: requests waiting for a heartbeat quorum, in arrival order.
  struct ReadIndexStatus {
    Message request;
    LogIndex index = 0;
    std::set<MemberId> acks;
  };
  std::map<std::string, ReadIndexStatus> pending_reads_;
  std::deque<std::string> read_queue_;
  // Requests that arrived before the leader committed an entry of its term.
  std::vector<Message> pending_read_index_messages_;
};

}  // namespace cairn::raft
