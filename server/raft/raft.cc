#include "server/raft/raft.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/base/check.h"
#include "server/base/logging.h"

namespace cairn::raft {

absl::Status Config::Validate() const {
  if (id == kNoMember) return absl::InvalidArgumentError("raft: id must not be 0");
  if (heartbeat_tick <= 0) return absl::InvalidArgumentError("raft: heartbeat_tick must be > 0");
  if (election_tick <= heartbeat_tick) {
    return absl::InvalidArgumentError("raft: election_tick must be greater than heartbeat_tick");
  }
  if (storage == nullptr) return absl::InvalidArgumentError("raft: storage must not be null");
  if (max_inflight_msgs == 0)
    return absl::InvalidArgumentError("raft: max_inflight_msgs must be > 0");
  if (max_inflight_bytes == 0 || max_size_per_msg == 0 || max_committed_size_per_ready == 0 ||
      max_uncommitted_entries_size == 0) {
    return absl::InvalidArgumentError("raft: byte limits must be > 0");
  }
  return absl::OkStatus();
}

std::string_view StateTypeName(StateType state) {
  switch (state) {
    case StateType::kFollower:
      return "Follower";
    case StateType::kCandidate:
      return "Candidate";
    case StateType::kLeader:
      return "Leader";
    case StateType::kPreCandidate:
      return "PreCandidate";
  }
  return "Unknown";
}

Raft::Raft(const Config& config)
    : config_(config),
      id_(config.id),
      log_(config.storage, config.max_committed_size_per_ready),
      tracker_(config.max_inflight_msgs, config.max_inflight_bytes),
      rng_(config.random_seed) {
  CAIRN_CHECK_OK(config.Validate());
  auto initial = config.storage->GetInitialState();
  CAIRN_CHECK_OK(initial.status());
  config_base_ = initial->conf_state;
  config_base_index_ = log_.FirstIndex() - 1;
  // Rebuild the configuration from conf-change entries after the snapshot (thesis §4.1).
  LogIndex first = log_.FirstIndex();
  LogIndex last = log_.LastIndex();
  if (last >= first) {
    auto entries = log_.Slice(first, last + 1, kNoLimit);
    CAIRN_CHECK_OK(entries.status());
    OnEntriesWritten(first, *entries);
  }
  const HardState& hs = initial->hard_state;
  if (!hs.IsEmpty()) {
    CAIRN_CHECK(hs.commit >= log_.committed() && hs.commit <= last)
        << "stored commit " << hs.commit << " out of range [" << log_.committed() << ", " << last
        << "]";
    term_ = hs.term;
    vote_ = hs.vote;
    log_.CommitTo(hs.commit);
  }
  FoldCommittedConfigs();
  tracker_.ApplyConfState(EffectiveConfig(), log_.LastIndex() + 1);
  if (config.applied > 0) {
    CAIRN_CHECK(config.applied >= log_.applied())
        << "applied " << config.applied << " is before the snapshot " << log_.applied();
    log_.AppliedTo(config.applied);
  }
  BecomeFollower(term_, kNoMember);
}

// ---- Inputs ---------------------------------------------------------------------------------

absl::Status Raft::Step(const Message& m) {
  absl::Status result;
  if (m.term == 0) {
    // Local message, or a forwarded proposal / read / transfer request.
  } else if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      bool force = m.context == kCampaignTransfer;
      bool in_lease =
          config_.check_quorum && lead_ != kNoMember && election_elapsed_ < config_.election_tick;
      if (!force && in_lease) {
        // Thesis §4.2.3 / §6.2: while we hear from a live leader, a candidate with a higher term
        // (a member that was cut off, or one removed from the cluster) must not disrupt it.
        return absl::OkStatus();
      }
    }
    if (m.type == MessageType::kPreVote) {
      // A PreVote never changes our term (thesis §9.6).
    } else if (m.type == MessageType::kPreVoteResp && !m.reject) {
      // The granted PreVote carries the term we will campaign in; keep ours until we do.
    } else if (m.type == MessageType::kApp || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnap) {
      BecomeFollower(m.term, m.from);  // §5.1: a higher term makes us a follower
    } else {
      BecomeFollower(m.term, kNoMember);
    }
  } else if (m.term < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type == MessageType::kHeartbeat || m.type == MessageType::kApp)) {
      // A stale leader (e.g. after a partition heals) learns our term and steps down. Without
      // this, with PreVote or CheckQuorum, a member whose term grew would never be heard.
      Message resp;
      resp.type = MessageType::kAppResp;
      resp.to = m.from;
      Send(std::move(resp));
    } else if (m.type == MessageType::kPreVote) {
      Message resp;
      resp.type = MessageType::kPreVoteResp;
      resp.to = m.from;
      resp.term = term_;
      resp.reject = true;
      Send(std::move(resp));
    }
    // §5.1: otherwise a request with a stale term is rejected (dropped).
    return absl::OkStatus();
  }

  switch (m.type) {
    case MessageType::kHup:
      Hup(config_.pre_vote ? CampaignType::kPreElection : CampaignType::kElection);
      break;
    case MessageType::kVote:
    case MessageType::kPreVote:
      HandleVoteRequest(m);
      break;
    default:
      switch (state_) {
        case StateType::kLeader:
          StepLeader(m, &result);
          break;
        case StateType::kCandidate:
        case StateType::kPreCandidate:
          StepCandidate(m, &result);
          break;
        case StateType::kFollower:
          StepFollower(m, &result);
          break;
      }
  }
  FoldCommittedConfigs();
  if (state_ == StateType::kLeader && !tracker_.IsVoter(id_) && config_uncommitted_.empty()) {
    // Thesis §4.2.2: a leader removed from the configuration steps down once the change is
    // committed; until then it manages the cluster without counting itself.
    CAIRN_LOG(kInfo, "raft") << "member " << id_ << " removed; stepping down at term " << term_;
    BecomeFollower(term_, kNoMember);
  }
  return result;
}

void Raft::Tick() {
  if (state_ == StateType::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    Message m;
    m.type = MessageType::kHup;
    m.from = id_;
    (void)Step(m);
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_tick) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      Message m;
      m.type = MessageType::kCheckQuorum;
      m.from = id_;
      (void)Step(m);
    }
    // Thesis §3.10: a transfer that did not finish within an election timeout is abandoned
    // so that the leader accepts proposals again.
    if (state_ == StateType::kLeader && lead_transferee_ != kNoMember) AbortLeaderTransfer();
  }
  if (state_ != StateType::kLeader) return;
  if (heartbeat_elapsed_ >= config_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    Message m;
    m.type = MessageType::kBeat;
    m.from = id_;
    (void)Step(m);
  }
}

absl::Status Raft::Propose(std::vector<Entry> entries) {
  Message m;
  m.type = MessageType::kProp;
  m.from = id_;
  m.entries = std::move(entries);
  return Step(m);
}

void Raft::ReportApplied(LogIndex applied) { log_.AppliedTo(applied); }

// ---- Elections (§5.2, §5.4.1, thesis §9.6) -------------------------------------------------

void Raft::HandleVoteRequest(const Message& m) {
  bool can_vote = vote_ == m.from || (vote_ == kNoMember && lead_ == kNoMember) ||
                  (m.type == MessageType::kPreVote && m.term > term_);
  Message resp;
  resp.to = m.from;
  resp.type = m.type == MessageType::kVote ? MessageType::kVoteResp : MessageType::kPreVoteResp;
  // §5.4.1: vote only for a candidate whose log is at least as up to date as ours.
  if (can_vote && log_.IsUpToDate(m.index, m.log_term)) {
    resp.term = m.term;
    Send(std::move(resp));
    if (m.type == MessageType::kVote) {
      election_elapsed_ = 0;
      vote_ = m.from;  // §5.2: at most one vote per term (persisted before the reply leaves)
    }
  } else {
    resp.term = term_;
    resp.reject = true;
    Send(std::move(resp));
  }
}

void Raft::Hup(CampaignType type) {
  if (state_ == StateType::kLeader) return;
  if (!Promotable()) return;
  Campaign(type);
}

void Raft::Campaign(CampaignType type) {
  MessageType vote_type;
  Term term;
  if (type == CampaignType::kPreElection) {
    BecomePreCandidate();
    vote_type = MessageType::kPreVote;
    term = term_ + 1;  // the term we would campaign in; ours does not change yet
  } else {
    BecomeCandidate();
    vote_type = MessageType::kVote;
    term = term_;
  }
  tracker_.RecordVote(id_, true);
  size_t granted, rejected;
  if (tracker_.TallyVotes(&granted, &rejected) == ProgressTracker::VoteResult::kWon) {
    // A single-voter cluster wins at once.
    if (type == CampaignType::kPreElection) {
      Campaign(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (MemberId id : tracker_.voters()) {
    if (id == id_) continue;
    Message m;
    m.type = vote_type;
    m.to = id;
    m.term = term;
    m.index = log_.LastIndex();
    m.log_term = log_.LastTerm();
    if (type == CampaignType::kTransfer) m.context = std::string(kCampaignTransfer);
    Send(std::move(m));
  }
}

void Raft::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoMember;
  }
  lead_ = kNoMember;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  tracker_.ResetVotes();
  LogIndex last = log_.LastIndex();
  for (auto& [id, pr] : tracker_.progress()) {
    bool learner = pr.is_learner;
    pr = Progress(last + 1, config_.max_inflight_msgs, config_.max_inflight_bytes);
    pr.is_learner = learner;
    if (id == id_) pr.match = last;
  }
  pending_conf_index_ = 0;
  uncommitted_size_ = 0;
  pending_reads_.clear();
  read_queue_.clear();
  pending_read_index_messages_.clear();
}

void Raft::ResetRandomizedElectionTimeout() {
  // §5.2: randomized election timeouts make split votes rare.
  randomized_election_timeout_ =
      config_.election_tick + static_cast<int>(rng_.Uniform(config_.election_tick));
}

void Raft::BecomeFollower(Term term, MemberId lead) {
  Reset(term);
  lead_ = lead;
  state_ = StateType::kFollower;
}

void Raft::BecomeCandidate() {
  CAIRN_CHECK(state_ != StateType::kLeader) << "leader cannot become candidate";
  Reset(term_ + 1);  // §5.2: increment the term, vote for self
  vote_ = id_;
  state_ = StateType::kCandidate;
}

void Raft::BecomePreCandidate() {
  CAIRN_CHECK(state_ != StateType::kLeader) << "leader cannot become pre-candidate";
  // Only the role changes: term and vote stay, so a failed PreVote leaves no trace (§9.6).
  tracker_.ResetVotes();
  lead_ = kNoMember;
  state_ = StateType::kPreCandidate;
}

void Raft::BecomeLeader() {
  CAIRN_CHECK(state_ != StateType::kFollower) << "follower cannot become leader directly";
  Reset(term_);
  lead_ = id_;
  state_ = StateType::kLeader;
  if (Progress* self = tracker_.Find(id_)) {
    self->BecomeReplicate();
    self->recent_active = true;
  }
  // §8: a new leader commits a no-op entry of its term to learn what is committed.
  std::vector<Entry> noop(1);
  CAIRN_CHECK(AppendEntries(&noop)) << "empty entry must always be accepted";
  // No conf change until that entry of the leader's own term is committed (see
  // pending_conf_index_ in raft.h).
  pending_conf_index_ = log_.LastIndex();
  CAIRN_LOG(kInfo, "raft") << "member " << id_ << " became leader at term " << term_;
}

// ---- Role-specific handling ------------------------------------------------------------------

void Raft::StepLeader(const Message& m, absl::Status* result) {
  switch (m.type) {
    case MessageType::kBeat:
      BroadcastHeartbeat(read_queue_.empty() ? std::string() : read_queue_.back());
      return;
    case MessageType::kCheckQuorum: {
      if (Progress* self = tracker_.Find(id_)) self->recent_active = true;
      if (!tracker_.QuorumActive()) {
        // Thesis §6.2: a leader that cannot reach a quorum steps down, so clients can find the
        // real leader and reads are not served by a deposed one.
        CAIRN_LOG(kInfo, "raft") << "member " << id_ << " lost quorum; stepping down";
        BecomeFollower(term_, kNoMember);
        return;
      }
      for (auto& [id, pr] : tracker_.progress()) {
        if (id != id_) pr.recent_active = false;
      }
      return;
    }
    case MessageType::kProp: {
      CAIRN_CHECK(!m.entries.empty()) << "proposal without entries";
      if (tracker_.Find(id_) == nullptr) {
        *result = absl::UnavailableError(
            "raft: proposal dropped: this member was removed from the cluster");
        return;
      }
      if (lead_transferee_ != kNoMember) {
        *result = absl::UnavailableError("raft: proposal dropped: leadership transfer in progress");
        return;
      }
      std::vector<Entry> entries = m.entries;
      int conf_changes = 0;
      ConfState cs = LatestConfig();
      for (const Entry& e : entries) {
        if (e.type != EntryType::kConfChange) continue;
        if (++conf_changes > 1) {
          *result = absl::InvalidArgumentError("raft: only one conf change per proposal");
          return;
        }
        if (pending_conf_index_ > log_.committed()) {
          *result = absl::FailedPreconditionError(
              "raft: proposal dropped: a configuration change is pending");
          return;
        }
        auto cc = DecodeConfChange(e.data);
        if (!cc.ok()) {
          *result = cc.status();
          return;
        }
        absl::Status valid = ValidateConfChange(cs, *cc);
        if (!valid.ok()) {
          *result = valid;
          return;
        }
      }
      if (!AppendEntries(&entries)) {
        *result = absl::ResourceExhaustedError(
            "raft: proposal dropped: too many uncommitted entry bytes");
        return;
      }
      for (const Entry& e : entries) {
        if (e.type == EntryType::kConfChange) pending_conf_index_ = e.index;
      }
      BroadcastAppend();
      return;
    }
    case MessageType::kReadIndex:
      if (m.context.empty()) {
        *result = absl::InvalidArgumentError("raft: read index request needs a context");
        return;
      }
      HandleReadIndex(m);
      return;
    case MessageType::kTransferLeader: {
      Progress* pr = tracker_.Find(m.from);
      if (pr == nullptr || pr->is_learner) return;  // only a voter can lead
      MemberId transferee = m.from;
      if (lead_transferee_ != kNoMember) {
        if (lead_transferee_ == transferee) return;  // already under way
        AbortLeaderTransfer();
      }
      if (transferee == id_) return;
      // Thesis §3.10: stop accepting proposals, bring the transferee up to date, then tell it
      // to campaign at once. The transfer must finish within an election timeout.
      election_elapsed_ = 0;
      lead_transferee_ = transferee;
      if (pr->match == log_.LastIndex()) {
        SendTimeoutNow(transferee);
      } else {
        SendAppend(transferee);
      }
      return;
    }
    default:
      break;
  }

  Progress* pr = tracker_.Find(m.from);
  if (pr == nullptr) return;
  switch (m.type) {
    case MessageType::kAppResp: {
      pr->recent_active = true;
      if (m.reject) {
        // §5.3 with the term hint: skip all entries of a conflicting term in one round trip.
        LogIndex next_probe = m.reject_hint;
        if (m.log_term > 0) next_probe = log_.FindConflictByTerm(m.reject_hint, m.log_term).first;
        if (pr->MaybeDecrTo(m.index, next_probe)) {
          if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
          SendAppend(m.from);
        }
        return;
      }
      bool was_paused = pr->IsPaused();
      if (!pr->MaybeUpdate(m.index)) return;
      switch (pr->state) {
        case ProgressState::kProbe:
          pr->BecomeReplicate();
          break;
        case ProgressState::kSnapshot:
          if (pr->match + 1 >= log_.FirstIndex()) {
            pr->BecomeProbe();
            pr->BecomeReplicate();
          }
          break;
        case ProgressState::kReplicate:
          pr->inflights.FreeLE(m.index);
          break;
      }
      if (MaybeCommit()) {
        BroadcastAppend();
      } else if (was_paused) {
        SendAppend(m.from);
      }
      // Pipelining: keep the window full while there is more to send.
      while (MaybeSendAppend(m.from, false)) {
      }
      if (m.from == lead_transferee_ && pr->match == log_.LastIndex()) SendTimeoutNow(m.from);
      return;
    }
    case MessageType::kHeartbeatResp:
      pr->recent_active = true;
      pr->msg_app_flow_paused = false;
      if (pr->state == ProgressState::kReplicate && pr->inflights.Full()) {
        pr->inflights.FreeFirstOne();  // an append may have been lost: let one more through
      }
      if (pr->match < log_.LastIndex() || pr->state == ProgressState::kProbe) SendAppend(m.from);
      if (!m.context.empty()) RecvHeartbeatAck(m.from, m.context);
      return;
    case MessageType::kSnapStatus:
      if (pr->state != ProgressState::kSnapshot) return;
      if (m.reject) pr->pending_snapshot = 0;  // failed: probe from match again
      pr->BecomeProbe();
      // Wait for the next heartbeat response before probing (the follower may still be busy).
      pr->msg_app_flow_paused = true;
      return;
    case MessageType::kUnreachable:
      if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
      return;
    default:
      return;
  }
}

void Raft::StepCandidate(const Message& m, absl::Status* result) {
  switch (m.type) {
    case MessageType::kProp:
      *result = absl::UnavailableError("raft: proposal dropped: no leader");
      return;
    case MessageType::kReadIndex:
      *result = absl::UnavailableError("raft: read index dropped: no leader");
      return;
    case MessageType::kApp:
      BecomeFollower(m.term, m.from);  // §5.2: a leader of our term exists
      HandleAppendEntries(m);
      return;
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      return;
    case MessageType::kSnap:
      BecomeFollower(m.term, m.from);
      HandleSnapshot(m);
      return;
    case MessageType::kVoteResp:
    case MessageType::kPreVoteResp: {
      bool pre = state_ == StateType::kPreCandidate;
      if (pre != (m.type == MessageType::kPreVoteResp)) return;  // response to another round
      tracker_.RecordVote(m.from, !m.reject);
      size_t granted, rejected;
      switch (tracker_.TallyVotes(&granted, &rejected)) {
        case ProgressTracker::VoteResult::kWon:
          if (pre) {
            Campaign(CampaignType::kElection);
          } else {
            BecomeLeader();
            BroadcastAppend();
          }
          break;
        case ProgressTracker::VoteResult::kLost:
          BecomeFollower(term_, kNoMember);
          break;
        case ProgressTracker::VoteResult::kPending:
          break;
      }
      return;
    }
    default:
      return;
  }
}

void Raft::StepFollower(const Message& m, absl::Status* result) {
  switch (m.type) {
    case MessageType::kProp:
      if (lead_ == kNoMember) {
        *result = absl::UnavailableError("raft: proposal dropped: no leader");
        return;
      } else {
        Message fwd = m;
        fwd.to = lead_;
        fwd.term = 0;
        Send(std::move(fwd));
      }
      return;
    case MessageType::kApp:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleAppendEntries(m);
      return;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleHeartbeat(m);
      return;
    case MessageType::kSnap:
      election_elapsed_ = 0;
      lead_ = m.from;
      HandleSnapshot(m);
      return;
    case MessageType::kTransferLeader:
      if (lead_ == kNoMember) return;
      {
        Message fwd = m;
        fwd.to = lead_;
        fwd.term = 0;
        Send(std::move(fwd));
      }
      return;
    case MessageType::kTimeoutNow:
      // Thesis §3.10: campaign at once, skipping PreVote and ignoring leases.
      Hup(CampaignType::kTransfer);
      return;
    case MessageType::kReadIndex:
      if (lead_ == kNoMember) {
        *result = absl::UnavailableError("raft: read index dropped: no leader");
        return;
      }
      if (m.context.empty()) {
        *result = absl::InvalidArgumentError("raft: read index request needs a context");
        return;
      }
      {
        Message fwd = m;
        fwd.to = lead_;
        fwd.term = 0;
        Send(std::move(fwd));
      }
      return;
    case MessageType::kReadIndexResp:
      read_states_.push_back(ReadState{m.index, m.context});
      return;
    default:
      return;
  }
}

// ---- Replication (§5.3, §7) ------------------------------------------------------------------

void Raft::HandleAppendEntries(const Message& m) {
  Message resp;
  resp.type = MessageType::kAppResp;
  resp.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to our commit is already known to match (committed entries never change).
    resp.index = log_.committed();
    Send(std::move(resp));
    return;
  }
  LogIndex conflict = 0;
  if (auto last_new = log_.MaybeAppend(m.index, m.log_term, m.commit, m.entries, &conflict)) {
    if (conflict != 0) OnEntriesWritten(conflict, m.entries);
    resp.index = *last_new;
    Send(std::move(resp));
    return;
  }
  // §5.3: reject, with a hint so the leader can skip a whole conflicting term at once: the last
  // index at or before m.index whose term is <= the leader's term there.
  LogIndex hint_index = std::min(m.index, log_.LastIndex());
  auto [index, term] = log_.FindConflictByTerm(hint_index, m.log_term);
  resp.index = m.index;
  resp.reject = true;
  resp.reject_hint = index;
  resp.log_term = term;
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  log_.CommitTo(m.commit);
  Message resp;
  resp.type = MessageType::kHeartbeatResp;
  resp.to = m.from;
  resp.context = m.context;
  Send(std::move(resp));
}

void Raft::HandleSnapshot(const Message& m) {
  Message resp;
  resp.type = MessageType::kAppResp;
  resp.to = m.from;
  if (m.snapshot.has_value() && Restore(*m.snapshot)) {
    resp.index = log_.LastIndex();
  } else {
    resp.index = log_.committed();
  }
  Send(std::move(resp));
}

bool Raft::Restore(const Snapshot& snapshot) {
  const SnapshotMetadata& meta = snapshot.metadata;
  if (meta.index <= log_.committed()) return false;
  CAIRN_CHECK(state_ == StateType::kFollower) << "only a follower installs a snapshot";
  if (log_.MatchTerm(meta.index, meta.term)) {
    // Our log already holds the snapshot's last entry: by Log Matching it holds all before it,
    // so just advance commit (§7: "retain the entries following it").
    log_.CommitTo(meta.index);
    return false;
  }
  log_.Restore(snapshot);
  config_base_ = meta.conf_state;
  config_base_index_ = meta.index;
  config_uncommitted_.clear();
  SwitchToConfig(config_base_);
  return true;
}

void Raft::Send(Message m) {
  // Forwarded requests keep their origin, so the answer to a read goes to the member that asked
  // even when the request was forwarded more than once (leadership moved meanwhile).
  bool forwarded = m.type == MessageType::kProp || m.type == MessageType::kReadIndex ||
                   m.type == MessageType::kTransferLeader;
  if (!forwarded || m.from == kNoMember) m.from = id_;
  if (m.type == MessageType::kVote || m.type == MessageType::kVoteResp ||
      m.type == MessageType::kPreVote || m.type == MessageType::kPreVoteResp) {
    CAIRN_CHECK(m.term != 0) << MessageTypeName(m.type) << " without a term";
  } else if (m.type != MessageType::kProp && m.type != MessageType::kReadIndex &&
             m.type != MessageType::kTransferLeader) {
    m.term = term_;
  }
  msgs_.push_back(std::move(m));
}

bool Raft::MaybeSendAppend(MemberId to, bool send_if_empty) {
  if (to == id_) return false;
  Progress* pr = tracker_.Find(to);
  if (pr == nullptr || pr->IsPaused()) return false;
  LogIndex prev_index = pr->next - 1;
  absl::StatusOr<Term> prev_term = log_.TermAt(prev_index);
  absl::StatusOr<std::vector<Entry>> entries =
      prev_term.ok() ? log_.EntriesFrom(pr->next, config_.max_size_per_msg) : prev_term.status();
  if (!entries.ok()) {
    CAIRN_CHECK(IsCompacted(entries.status()))
        << "reading entries for " << to << " at " << pr->next << ": " << entries.status();
    // §7: the entries the follower needs were compacted; send the snapshot instead. Only to an
    // active follower, so an unreachable one does not pin snapshot resources.
    if (!pr->recent_active) return false;
    auto snapshot = log_.GetSnapshot();
    if (!snapshot.ok()) {
      CAIRN_CHECK(snapshot.status().code() == absl::StatusCode::kUnavailable)
          << "GetSnapshot: " << snapshot.status();
      return false;  // try again later
    }
    CAIRN_CHECK(!snapshot->IsEmpty()) << "need a non-empty snapshot";
    Message m;
    m.type = MessageType::kSnap;
    m.to = to;
    LogIndex snap_index = snapshot->metadata.index;
    m.snapshot = std::move(*snapshot);
    Send(std::move(m));
    pr->BecomeSnapshot(snap_index);
    return true;
  }
  if (entries->empty() && !send_if_empty) return false;
  uint64_t bytes = 0;
  for (const Entry& e : *entries) bytes += e.PayloadSize();
  size_t count = entries->size();
  LogIndex last = count > 0 ? entries->back().index : prev_index;
  Message m;
  m.type = MessageType::kApp;
  m.to = to;
  m.index = prev_index;
  m.log_term = *prev_term;
  m.entries = std::move(*entries);
  m.commit = log_.committed();
  Send(std::move(m));
  pr->SentEntries(count, last, bytes);
  return true;
}

void Raft::BroadcastAppend() {
  for (auto& [id, pr] : tracker_.progress()) {
    if (id != id_) SendAppend(id);
  }
}

void Raft::SendHeartbeat(MemberId to, const std::string& ctx) {
  Progress* pr = tracker_.Find(to);
  Message m;
  m.type = MessageType::kHeartbeat;
  m.to = to;
  // Never tell a follower to commit past what it is known to hold.
  m.commit = std::min(pr->match, log_.committed());
  m.context = ctx;
  Send(std::move(m));
}

void Raft::BroadcastHeartbeat(const std::string& ctx) {
  for (auto& [id, pr] : tracker_.progress()) {
    if (id != id_) SendHeartbeat(id, ctx);
  }
}

void Raft::SendTimeoutNow(MemberId to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  Send(std::move(m));
}

bool Raft::AppendEntries(std::vector<Entry>* entries) {
  uint64_t bytes = 0;
  for (const Entry& e : *entries) bytes += e.PayloadSize();
  if (uncommitted_size_ > 0 && bytes > 0 &&
      uncommitted_size_ + bytes > config_.max_uncommitted_entries_size) {
    return false;
  }
  uncommitted_size_ += bytes;
  LogIndex last = log_.LastIndex();
  for (size_t i = 0; i < entries->size(); ++i) {
    (*entries)[i].term = term_;
    (*entries)[i].index = last + 1 + i;
  }
  log_.Append(*entries);
  OnEntriesWritten(last + 1, *entries);
  if (Progress* self = tracker_.Find(id_)) self->MaybeUpdate(log_.LastIndex());
  MaybeCommit();  // a single voter commits at once
  return true;
}

bool Raft::MaybeCommit() {
  // §5.4.2: only an entry of the current term is committed by counting replicas; earlier
  // entries are committed indirectly with it.
  if (!log_.MaybeCommit(tracker_.QuorumCommitted(), term_)) return false;
  FoldCommittedConfigs();
  ReleasePendingReadIndexMessages();
  return true;
}

void Raft::ReduceUncommittedSize(const std::vector<Entry>& committed) {
  uint64_t bytes = 0;
  for (const Entry& e : committed) bytes += e.PayloadSize();
  uncommitted_size_ = bytes > uncommitted_size_ ? 0 : uncommitted_size_ - bytes;
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.TermOrZero(log_.committed()) == term_;
}

// ---- Configuration (thesis §4.1-§4.2) --------------------------------------------------------

ConfState Raft::LatestConfig() const {
  return config_uncommitted_.empty() ? config_base_ : config_uncommitted_.back().second;
}

bool Raft::TakesEffectAtCommit(const ConfState& before, const ConfState& after) {
  return before.voters.size() == 1 && after.voters.size() == 2;
}

ConfState Raft::EffectiveConfig() const {
  ConfState cs = config_base_;
  for (const auto& [index, next] : config_uncommitted_) {
    if (TakesEffectAtCommit(cs, next)) break;  // and every later change waits with it
    cs = next;
  }
  return cs;
}

void Raft::OnEntriesWritten(LogIndex from, const std::vector<Entry>& entries) {
  CAIRN_CHECK(from > config_base_index_)
      << "rewriting entry " << from << " at or below committed config " << config_base_index_;
  // Entries at or after `from` were replaced: configurations they carried are gone (§4.1: "a
  // log entry for a configuration change can be removed ... the server must be prepared to
  // fall back to the previous configuration").
  while (!config_uncommitted_.empty() && config_uncommitted_.back().first >= from) {
    config_uncommitted_.pop_back();
  }
  for (const Entry& e : entries) {
    if (e.index < from || e.type != EntryType::kConfChange) continue;
    auto cc = DecodeConfChange(e.data);
    // An undecodable change is a no-op on every member alike.
    ConfState next = cc.ok() ? ApplyConfChangeToState(LatestConfig(), *cc) : LatestConfig();
    config_uncommitted_.emplace_back(e.index, std::move(next));
  }
  ConfState effective = EffectiveConfig();
  if (!(effective == tracker_.conf_state())) SwitchToConfig(effective);
}

void Raft::FoldCommittedConfigs() {
  LogIndex committed = log_.committed();
  size_t n = 0;
  while (n < config_uncommitted_.size() && config_uncommitted_[n].first <= committed) {
    config_base_ = config_uncommitted_[n].second;
    config_base_index_ = config_uncommitted_[n].first;
    ++n;
  }
  config_uncommitted_.erase(config_uncommitted_.begin(), config_uncommitted_.begin() + n);
  if (n == 0) return;
  // A change that waited for its commit (TakesEffectAtCommit) takes effect now.
  ConfState effective = EffectiveConfig();
  if (!(effective == tracker_.conf_state())) SwitchToConfig(effective);
}

void Raft::SwitchToConfig(const ConfState& cs) {
  tracker_.ApplyConfState(cs, log_.LastIndex() + 1);
  if (state_ != StateType::kLeader) return;
  if (Progress* self = tracker_.Find(id_)) {
    self->MaybeUpdate(log_.LastIndex());
    self->recent_active = true;
  }
  if (lead_transferee_ != kNoMember && !tracker_.IsVoter(lead_transferee_)) {
    AbortLeaderTransfer();  // the transferee was removed or is not a voter
  }
  // A smaller quorum may commit more right away (removing a member, §4.2).
  MaybeCommit();
}

// ---- ReadIndex (thesis §6.4) -----------------------------------------------------------------

void Raft::HandleReadIndex(const Message& m) {
  if (tracker_.voters().size() == 1 && tracker_.IsVoter(id_)) {
    RespondToRead(m, log_.committed());  // a single voter is always the leader it thinks it is
    return;
  }
  if (!CommittedEntryInCurrentTerm()) {
    // Step 1 of §6.4: the leader must first commit an entry of its term to know the commit
    // index is current. Queue the read until then.
    pending_read_index_messages_.push_back(m);
    return;
  }
  AddReadRequest(m);
}

void Raft::AddReadRequest(const Message& m) {
  if (pending_reads_.contains(m.context)) return;
  ReadIndexStatus st;
  st.request = m;
  st.index = log_.committed();  // step 2: remember the commit index as the read index
  if (tracker_.IsVoter(id_)) st.acks.insert(id_);
  pending_reads_.emplace(m.context, std::move(st));
  read_queue_.push_back(m.context);
  // Step 3: confirm leadership with a round of heartbeats carrying the request id.
  BroadcastHeartbeat(m.context);
}

void Raft::RecvHeartbeatAck(MemberId from, const std::string& ctx) {
  auto it = pending_reads_.find(ctx);
  if (it == pending_reads_.end()) return;
  it->second.acks.insert(from);
  if (!tracker_.IsQuorum(it->second.acks)) return;
  // A quorum acknowledged a heartbeat sent after every earlier queued request arrived, so all
  // of them are confirmed too.
  while (!read_queue_.empty()) {
    std::string c = std::move(read_queue_.front());
    read_queue_.pop_front();
    auto st = pending_reads_.find(c);
    RespondToRead(st->second.request, st->second.index);
    pending_reads_.erase(st);
    if (c == ctx) break;
  }
}

void Raft::RespondToRead(const Message& req, LogIndex index) {
  if (req.from == kNoMember || req.from == id_) {
    read_states_.push_back(ReadState{index, req.context});
    return;
  }
  Message resp;
  resp.type = MessageType::kReadIndexResp;
  resp.to = req.from;
  resp.index = index;
  resp.context = req.context;
  Send(std::move(resp));
}

void Raft::ReleasePendingReadIndexMessages() {
  if (pending_read_index_messages_.empty() || !CommittedEntryInCurrentTerm()) return;
  std::vector<Message> pending = std::exchange(pending_read_index_messages_, {});
  for (const Message& m : pending) AddReadRequest(m);
}

}  // namespace cairn::raft
