#include "server/raft/raw_node.h"

#include "absl/strings/str_cat.h"
#include "server/base/check.h"

namespace cairn::raft {

absl::StatusOr<std::unique_ptr<RawNode>> RawNode::Create(const Config& config) {
  absl::Status valid = config.Validate();
  if (!valid.ok()) return valid;
  auto initial = config.storage->GetInitialState();
  if (!initial.ok()) return initial.status();
  return std::unique_ptr<RawNode>(new RawNode(config, initial->hard_state, initial->conf_state));
}

RawNode::RawNode(const Config& config, HardState initial_hard_state, ConfState initial_conf)
    : config_(config),
      raft_(config),
      prev_soft_state_(raft_.soft_state()),
      prev_hard_state_(initial_hard_state),
      applied_conf_state_(std::move(initial_conf)) {}

void RawNode::Tick() { raft_.Tick(); }

absl::Status RawNode::Campaign() {
  Message m;
  m.type = MessageType::kHup;
  m.from = raft_.id();
  return raft_.Step(m);
}

absl::Status RawNode::Propose(std::string data) {
  std::vector<std::string> one;
  one.push_back(std::move(data));
  return ProposeBatch(std::move(one));
}

absl::Status RawNode::ProposeBatch(std::vector<std::string> datas) {
  if (datas.empty()) return absl::InvalidArgumentError("raft: empty proposal batch");
  std::vector<Entry> entries(datas.size());
  for (size_t i = 0; i < datas.size(); ++i) entries[i].data = std::move(datas[i]);
  return raft_.Propose(std::move(entries));
}

absl::Status RawNode::ProposeConfChange(const ConfChange& cc) {
  absl::Status valid = ValidateConfChange(raft_.conf_state(), cc);
  if (!valid.ok()) return valid;
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = EncodeConfChange(cc);
  std::vector<Entry> entries;
  entries.push_back(std::move(e));
  return raft_.Propose(std::move(entries));
}

ConfState RawNode::ApplyConfChange(const ConfChange& cc) {
  applied_conf_state_ = ApplyConfChangeToState(applied_conf_state_, cc);
  return applied_conf_state_;
}

absl::Status RawNode::Step(const Message& m) {
  if (IsLocalMessage(m.type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("raft: cannot step local message ", std::string(MessageTypeName(m.type))));
  }
  if (m.to != raft_.id()) {
    return absl::InvalidArgumentError(
        absl::StrCat("raft: message for ", m.to, " stepped into ", raft_.id()));
  }
  return raft_.Step(m);
}

absl::Status RawNode::ReadIndex(std::string ctx) {
  if (ctx.empty()) return absl::InvalidArgumentError("raft: read index context must not be empty");
  Message m;
  m.type = MessageType::kReadIndex;
  m.from = raft_.id();
  m.context = std::move(ctx);
  return raft_.Step(m);
}

void RawNode::TransferLeader(MemberId transferee) {
  Message m;
  m.type = MessageType::kTransferLeader;
  m.from = transferee;
  (void)raft_.Step(m);
}

void RawNode::ReportUnreachable(MemberId id) {
  Message m;
  m.type = MessageType::kUnreachable;
  m.from = id;
  (void)raft_.Step(m);
}

void RawNode::ReportSnapshot(MemberId id, bool failure) {
  Message m;
  m.type = MessageType::kSnapStatus;
  m.from = id;
  m.reject = failure;
  (void)raft_.Step(m);
}

bool RawNode::HasReady() const {
  if (!(raft_.soft_state() == prev_soft_state_)) return true;
  HardState hs = raft_.hard_state();
  if (!hs.IsEmpty() && !(hs == prev_hard_state_)) return true;
  const RaftLog& log = raft_.log();
  if (log.UnstableSnapshot().has_value()) return true;
  if (!log.UnstableEntries().empty()) return true;
  if (!raft_.messages().empty() || !raft_.read_states().empty()) return true;
  return log.HasNextCommittedEntries();
}

Ready RawNode::GetReady() {
  CAIRN_CHECK(!ready_outstanding_) << "GetReady called before Advance of the previous Ready";
  ready_outstanding_ = true;
  Ready rd;
  SoftState ss = raft_.soft_state();
  if (!(ss == prev_soft_state_)) {
    rd.soft_state = ss;
    prev_soft_state_ = ss;
  }
  HardState hs = raft_.hard_state();
  if (!hs.IsEmpty() && !(hs == prev_hard_state_)) {
    rd.hard_state = hs;
    rd.must_sync = hs.term != prev_hard_state_.term || hs.vote != prev_hard_state_.vote;
    prev_hard_state_ = hs;
  }
  RaftLog& log = raft_.log();
  rd.entries = log.UnstableEntries();
  if (!rd.entries.empty()) rd.must_sync = true;
  if (log.UnstableSnapshot().has_value()) {
    rd.snapshot = *log.UnstableSnapshot();
    rd.must_sync = true;
  }
  rd.committed_entries = log.NextCommittedEntries();
  raft_.ReduceUncommittedSize(rd.committed_entries);
  rd.messages = raft_.TakeMessages();
  rd.read_states = raft_.TakeReadStates();
  return rd;
}

void RawNode::Advance(const Ready& rd) {
  CAIRN_CHECK(ready_outstanding_) << "Advance without GetReady";
  ready_outstanding_ = false;
  const Storage& storage = *config_.storage;
  RaftLog& log = raft_.log();
  // Check the ordering rules: everything the Ready asked to persist is in storage now.
  if (!rd.snapshot.IsEmpty()) {
    CAIRN_CHECK(storage.FirstIndex() > rd.snapshot.metadata.index)
        << "Ready snapshot " << rd.snapshot.metadata.index << " not installed in storage";
    log.StableSnapTo(rd.snapshot.metadata.index);
    applied_conf_state_ = rd.snapshot.metadata.conf_state;
    if (rd.snapshot.metadata.index > log.applied()) log.AppliedTo(rd.snapshot.metadata.index);
  }
  if (!rd.entries.empty()) {
    const Entry& last = rd.entries.back();
    auto term = storage.TermAt(last.index);
    CAIRN_CHECK(storage.LastIndex() >= last.index && term.ok() && *term == last.term)
        << "Ready entries up to " << last.index << " not persisted before Advance";
    log.StableTo(last.index, last.term);
  }
  if (rd.hard_state.has_value()) {
    auto state = storage.GetInitialState();
    CAIRN_CHECK(state.ok() && state->hard_state == *rd.hard_state)
        << "Ready hard state not persisted before Advance";
  }
  if (!rd.committed_entries.empty()) log.AppliedTo(rd.committed_entries.back().index);
}

NodeStatus RawNode::GetStatus() const {
  NodeStatus s;
  s.id = raft_.id();
  s.hard_state = raft_.hard_state();
  s.soft_state = raft_.soft_state();
  s.applied = raft_.log().applied();
  s.lead_transferee = raft_.lead_transferee();
  s.conf_state = raft_.conf_state();
  if (raft_.state() == StateType::kLeader) {
    for (const auto& [id, pr] : raft_.tracker().progress()) {
      s.progress[id] = ProgressStatus{pr.match, pr.next, pr.state, pr.is_learner, pr.recent_active};
    }
  }
  return s;
}

}  // namespace cairn::raft
