#include "server/etcdserver/raft_driver.h"

#include <algorithm>
#include <future>

#include "absl/strings/str_cat.h"
#include "server/base/check.h"
#include "server/base/errors.h"
#include "server/base/logging.h"
#include "server/base/thread_name.h"
#include "server/etcdserver/member_id.h"

namespace cairn::etcdserver {

using base::ErrorKind;
using base::MakeError;

namespace {

// Peer messages queued for the raft thread at most; beyond, new ones are dropped (raft copes).
constexpr size_t kMaxInboxMessages = 16384;
// Client proposals drained together go to raft as one batch of at most this many bytes (one
// append on the leader, one forwarded message on a follower); a larger request goes alone.
constexpr size_t kMaxProposalBatchBytes = 1 << 20;

bool IsNoLeader(const absl::Status& st) {
  return st.code() == absl::StatusCode::kUnavailable &&
         st.message().find("no leader") != absl::string_view::npos;
}

absl::Status RaftProposeError(const absl::Status& st) {
  if (st.code() == absl::StatusCode::kResourceExhausted) {
    return MakeError(ErrorKind::kTooManyRequests);
  }
  absl::string_view m = st.message();
  if (m.find("transfer") != absl::string_view::npos) return MakeError(ErrorKind::kLeaderChanged);
  if (m.find("removed") != absl::string_view::npos) return MakeError(ErrorKind::kStopped);
  return MakeError(ErrorKind::kNoLeader);
}

}  // namespace

absl::StatusOr<RaftDriver::Durable> RaftDriver::RecoverDurable(base::Env* env,
                                                               const std::string& wal_dir,
                                                               wal::WalOptions options) {
  Durable durable;
  auto wal = wal::Wal::Open(env, wal_dir, options);
  if (!wal.ok()) return wal.status();
  durable.wal = std::move(*wal);
  wal::WalContents contents = durable.wal->ReadAll();
  durable.storage = std::make_unique<raft::MemoryStorage>();
  absl::Status loaded = wal::LoadIntoStorage(contents, "", durable.storage.get());
  if (!loaded.ok()) return loaded;
  // A snapshot marker is written only for committed state (a raft snapshot at the applied index,
  // or the leader's snapshot), but it may be durable without the hard state that raised the
  // commit index past it: a snapshot received from the leader is synced before the Ready's hard
  // state, and a torn tail may keep the marker and lose the record after it. Raft refuses to
  // start with a commit index below its snapshot, so the member could never restart: the marker
  // itself proves the commit. Found by the whole-member simulation (tests/sim/member_sim.h).
  raft::HardState hs = durable.storage->hard_state();
  if (!hs.IsEmpty() && hs.commit < contents.snapshot.index) {
    hs.commit = contents.snapshot.index;
    durable.storage->SetHardState(hs);
  }
  durable.snapshot_index = contents.snapshot.index;
  durable.applied_conf = contents.snapshot.conf_state;
  return durable;
}

absl::StatusOr<RaftDriver::Durable> RaftDriver::CreateDurable(
    base::Env* env, const std::string& wal_dir, const std::vector<raft::Entry>& initial,
    wal::WalOptions options) {
  Durable durable;
  auto wal = wal::Wal::Create(env, wal_dir, options);
  if (!wal.ok()) return wal.status();
  durable.wal = std::move(*wal);
  (void)durable.wal->ReadAll();
  durable.storage = std::make_unique<raft::MemoryStorage>();
  if (!initial.empty()) {
    raft::HardState hs{1, raft::kNoMember, initial.size()};
    durable.wal->Save(hs, initial);
    durable.wal->Sync();
    CAIRN_CHECK_OK(durable.storage->Append(initial));
    durable.storage->SetHardState(hs);
  }
  return durable;
}

absl::Status RaftDriver::CreateNode(raft::Config config, Durable* durable) {
  config.storage = durable->storage.get();
  config.applied = durable->snapshot_index;
  auto node = raft::RawNode::Create(config);
  if (!node.ok()) return node.status();
  durable->node = std::move(*node);
  return absl::OkStatus();
}

RaftDriver::RaftDriver(Deps deps, Durable durable)
    : deps_(std::move(deps)),
      own_metrics_(deps_.metrics ? nullptr : std::make_unique<ServerMetrics>()),
      metrics_(deps_.metrics ? deps_.metrics : own_metrics_.get()),
      rtt_(metrics_),
      wal_(std::move(durable.wal)),
      storage_(std::move(durable.storage)),
      node_(std::move(durable.node)),
      applied_conf_(durable.applied_conf),
      applied_conf_index_(durable.snapshot_index),
      snapshot_index_(durable.snapshot_index) {
  last_index_ = storage_->LastIndex();
  term_ = storage_->hard_state().term;
}

RaftDriver::~RaftDriver() { Join(); }

void RaftDriver::AttachTransport(transport::Transport* transport) {
  AttachSender(
      [transport](std::vector<raft::Message> messages) { transport->Send(std::move(messages)); });
}

void RaftDriver::AttachSender(Sender send) {
  send_ = [this, send = std::move(send)](std::vector<raft::Message> messages) {
    rtt_.OnSend(messages);
    send(std::move(messages));
  };
}

void RaftDriver::Start() {
  Prepare();
  thread_ = std::thread([this] {
    base::SetThreadName("cairn-raft");
    Loop();
  });
}

void RaftDriver::StartStepped() {
  stepped_ = true;
  Prepare();
}

void RaftDriver::Prepare() {
  next_tick_ms_ = NowMs() + deps_.heartbeat_interval_ms;
  // A lone voter need not wait an election timeout to lead (etcd campaigns at once too).
  raft::NodeStatus st = node_->GetStatus();
  if (st.conf_state.voters.size() == 1 && st.conf_state.voters[0] == deps_.member_id) {
    (void)node_->Campaign();
  }
}

bool RaftDriver::RunOnce() {
  Inbox in;
  if (!Drain(&in, /*wait=*/false)) return false;
  Iterate(in);
  return true;
}

void RaftDriver::RequestStop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
}

void RaftDriver::Join() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
  // Whatever the inbox still holds never reached raft.
  std::vector<StatusDone> held;
  {
    absl::MutexLock l(&mu_);
    held.swap(inbox_.reads);
    for (auto& t : inbox_.transfers) held.push_back(std::move(t.done));
    inbox_.transfers.clear();
  }
  for (auto& d : held) d(MakeError(ErrorKind::kStopped));
}

// ---------------------------------------------------------------------------------------------
// Inbox

absl::Status RaftDriver::Propose(uint64_t id, std::string data, Waiter& w) {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return MakeError(ErrorKind::kStopped);
    if (!deps_.waits->Register(id, NowMs() + deps_.request_timeout_ms, w)) {
      return MakeError(ErrorKind::kTooManyRequests);
    }
    inbox_.proposals.push_back(Proposal{id, std::move(data)});
  }
  return absl::OkStatus();
}

absl::Status RaftDriver::ProposeConfChange(uint64_t id, raft::ConfChange cc, Waiter& w) {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return MakeError(ErrorKind::kStopped);
    if (!deps_.waits->Register(id, NowMs() + deps_.request_timeout_ms, w)) {
      return MakeError(ErrorKind::kTooManyRequests);
    }
    inbox_.conf_changes.push_back(PendingConfChange{std::move(cc), id});
  }
  return absl::OkStatus();
}

void RaftDriver::ReadIndex(StatusDone done) {
  {
    absl::MutexLock l(&mu_);
    if (!stopping_) {
      inbox_.reads.push_back(std::move(done));
      return;
    }
  }
  done(MakeError(ErrorKind::kStopped));
}

void RaftDriver::TransferLeader(uint64_t target, StatusDone done) {
  {
    absl::MutexLock l(&mu_);
    if (!stopping_) {
      inbox_.transfers.push_back(
          Transfer{target, std::move(done), NowMs() + deps_.request_timeout_ms});
      return;
    }
  }
  done(MakeError(ErrorKind::kStopped));
}

void RaftDriver::Step(raft::Message message) {
  {
    absl::MutexLock l(&mu_);
    if (inbox_.messages.size() + inbox_.forwarded.size() >= kMaxInboxMessages) {
      return;  // raft retransmits
    }
    if (message.type == raft::MessageType::kProp) {
      inbox_.forwarded_entries += message.entries.size();
      inbox_.forwarded.push_back(std::move(message));
    } else {
      inbox_.messages.push_back(std::move(message));
    }
  }
}

void RaftDriver::StepSnapshot(raft::Message message, std::string path) {
  {
    absl::MutexLock l(&mu_);
    inbox_.snapshots.emplace_back(std::move(message), std::move(path));
    inbox_wake_ = true;
  }
}

void RaftDriver::ReportUnreachable(uint64_t to) {
  {
    absl::MutexLock l(&mu_);
    inbox_.unreachable.push_back(to);
    inbox_wake_ = true;
  }
}

void RaftDriver::ReportSnapshot(uint64_t to, bool ok) {
  {
    absl::MutexLock l(&mu_);
    inbox_.snapshot_status.emplace_back(to, ok);
    inbox_wake_ = true;
  }
}

void RaftDriver::ReportRemovedByPeer() {
  if (removed_by_peer_.exchange(true)) return;
  CAIRN_LOG(kWarn, "etcdserver") << "a peer refused this member: it was removed from the cluster";
  {
    absl::MutexLock l(&mu_);
    inbox_wake_ = true;
  }
}

void RaftDriver::OnApplied(std::vector<std::pair<uint64_t, raft::ConfChange>> confs,
                           uint64_t applied) {
  {
    absl::MutexLock l(&mu_);
    for (auto& c : confs) inbox_.applied_confs.push_back(std::move(c));
    inbox_.applied_index = std::max(inbox_.applied_index, applied);
    inbox_wake_ = true;
  }
}

std::map<uint64_t, uint64_t> RaftDriver::ProgressMatch() const {
  absl::MutexLock l(&mu_);
  return progress_match_;
}

bool RaftDriver::HasLeader() const { return node_->raft().soft_state().leader != raft::kNoMember; }

// ---------------------------------------------------------------------------------------------
// The raft thread

void RaftDriver::Loop() {
  while (true) {
    Inbox in;
    if (!Drain(&in, /*wait=*/true)) break;
    Iterate(in);
  }
  FailAllHeld();
}

void RaftDriver::Iterate(Inbox& in) {
  last_cycle_proposals_ = in.proposals.size() + in.forwarded_entries;
  Process(in);
  int64_t now = NowMs();
  if (now >= next_tick_ms_) Tick(now);
  while (node_->HasReady()) {
    raft::Ready rd = node_->GetReady();
    HandleReady(rd);
    // Read states: wait for the applier to reach their index.
    for (const raft::ReadState& rs : rd.read_states) {
      auto it = reads_.find(rs.request_ctx);
      if (it == reads_.end()) continue;
      std::vector<StatusDone> dones = std::move(it->second.dones);
      reads_.erase(it);
      for (auto& d : dones) deps_.reads->WaitFor(rs.index, std::move(d));
    }
    node_->Advance(rd);
  }
  FinishTransfers(NowMs(), /*timeouts=*/false);
  MaybeSnapshot();
}

bool RaftDriver::Drain(Inbox* in, bool wait) {
  absl::MutexLock l(&mu_);
  bool hold = false;
  if (wait) {
    // Until the next tick or work (the mutex re-checks the condition whenever it is released).
    mu_.AwaitWithTimeout(absl::Condition(this, &RaftDriver::InboxReady),
                         absl::Milliseconds(std::max<int64_t>(0, next_tick_ms_ - NowMs())));
    if (InboxProposals() > 0 && (linger_held_ || LingerStarts())) hold = Linger();
  }
  if (stopping_) return false;
  std::swap(*in, inbox_);
  inbox_.applied_index = in->applied_index;  // a high-water mark, not a queue
  inbox_wake_ = false;
  if (hold) {  // they wait for the next Drain
    linger_holds_.fetch_add(1, std::memory_order_relaxed);
    std::swap(in->proposals, inbox_.proposals);
    std::swap(in->forwarded, inbox_.forwarded);
    std::swap(in->forwarded_entries, inbox_.forwarded_entries);
  }
  linger_held_ = hold;
  return true;
}

// Group commit under load: more proposals for the next cycle, while they keep coming. Its
// deadline is on the injected clock (ms); the waits themselves are relative (a linger only
// happens in Loop, never in a stepped simulation).
bool RaftDriver::Linger() {
  if (!linger_held_) {
    lingers_.fetch_add(1, std::memory_order_relaxed);
    linger_deadline_ms_ = NowMs() + kLingerMicros / 1000;
  }
  while (!stopping_ && InboxProposals() > 0 && InboxProposals() < kLingerProposals) {
    if (OtherWork()) return true;
    const int64_t left_us = (linger_deadline_ms_ - NowMs()) * 1000;
    if (left_us <= 0) return false;
    const size_t seen = InboxProposals();
    bool over = mu_.AwaitWithTimeout(absl::Condition(this, &RaftDriver::LingerOver),
                                     absl::Microseconds(std::min(kLingerGapMicros, left_us)));
    if (!over && InboxProposals() == seen) return false;  // a gap without a proposal
  }
  return false;
}

void RaftDriver::Process(Inbox& in) {
  for (auto& [index, cc] : in.applied_confs) {
    applied_conf_ = node_->ApplyConfChange(cc);
    applied_conf_index_ = std::max(applied_conf_index_, index);
  }
  if (!in.applied_confs.empty()) PublishLocalReadIndex();  // a new voter ends the lone reads
  applied_conf_index_ = std::max(applied_conf_index_, in.applied_index);
  for (const auto& m : in.messages) {
    rtt_.OnReceive(m);
    (void)node_->Step(m);
  }
  for (const auto& m : in.forwarded) (void)node_->Step(m);
  for (auto& [m, path] : in.snapshots) {
    uint64_t index = m.snapshot->metadata.index;
    auto it = received_snapshots_.find(index);
    if (it != received_snapshots_.end() && it->second != path) {
      (void)deps_.env->RemoveFile(it->second);
    }
    received_snapshots_[index] = path;
    (void)node_->Step(m);
  }
  for (uint64_t id : in.unreachable) node_->ReportUnreachable(id);
  for (auto& [id, ok] : in.snapshot_status) node_->ReportSnapshot(id, !ok);

  RetryParked();  // before the new ones, so requests keep their order
  ProposeBatch(std::move(in.proposals), 0);
  for (PendingConfChange& pc : in.conf_changes) {
    pc.retry_ms = 0;  // propose now
    pending_ccs_.push_back(std::move(pc));
  }
  ProposeConfChanges();
  if (!in.reads.empty()) {
    IssueRead(InFlightRead{std::move(in.reads), NowMs() + deps_.request_timeout_ms, 0});
  }
  StartTransfers(in.transfers);
}

void RaftDriver::Tick(int64_t now) {
  const int64_t hb = deps_.heartbeat_interval_ms;
  node_->Tick();
  next_tick_ms_ += hb;
  if (next_tick_ms_ <= now) next_tick_ms_ = now + hb;  // fell behind: do not burst ticks
  // Requests that outlived the request timeout.
  for (Waiter& w : deps_.waits->Expire(now)) {
    metrics_->proposals_failed->Inc();
    w.Fail(MakeError(ErrorKind::kTimeout));
  }
  ExpireReads(now);
  ProposeConfChanges();
  FinishTransfers(now, /*timeouts=*/true);
  if (IsLeader()) {
    raft::NodeStatus st = node_->GetStatus();
    absl::MutexLock l(&mu_);
    progress_match_.clear();
    for (const auto& [id, pr] : st.progress) progress_match_[id] = pr.match;
  }
}

void RaftDriver::FailAllHeld() {
  for (auto& [ctx, r] : reads_) {
    for (auto& d : r.dones) d(MakeError(ErrorKind::kStopped));
  }
  reads_.clear();
  for (InFlightRead& r : parked_reads_) {
    for (auto& d : r.dones) d(MakeError(ErrorKind::kStopped));
  }
  parked_reads_.clear();
  for (Transfer& t : transfers_) t.done(MakeError(ErrorKind::kStopped));
  transfers_.clear();
}

// ---- proposals ----

void RaftDriver::FailProposal(uint64_t request_id, const absl::Status& st) {
  std::optional<Waiter> w = deps_.waits->Take(request_id);
  if (!w) return;
  metrics_->proposals_failed->Inc();
  w->Fail(st);
}

// Requests that meet this member without a leader (an election, a leadership transfer) wait for
// one, as etcd's raft node holds proposals while it has no leader, but only leader_wait_ms: then
// they fail with "no leader", so a client of a cut-off member can go elsewhere quickly.
//
// Proposes `batch` as few raft proposals (each at most kMaxProposalBatchBytes, one entry per
// request): one append on the leader, one forwarded message on a follower. Without a leader the
// requests are parked until `leader_deadline_ms` (0: from now on); any other error fails them.
void RaftDriver::ProposeBatch(std::vector<Proposal> batch, int64_t leader_deadline_ms) {
  if (batch.empty()) return;
  int64_t now = NowMs();
  if (!HasLeader()) {
    if (leader_deadline_ms == 0) leader_deadline_ms = now + deps_.leader_wait_ms;
    for (Proposal& p : batch) {
      if (now < leader_deadline_ms) {
        parked_proposals_.push_back(ParkedProposal{std::move(p), leader_deadline_ms});
      } else {
        FailProposal(p.request_id, MakeError(ErrorKind::kNoLeader));
      }
    }
    return;
  }
  size_t i = 0;
  while (i < batch.size()) {
    std::vector<std::string> datas;
    std::vector<uint64_t> ids;
    size_t bytes = 0;
    while (i < batch.size() &&
           (datas.empty() || bytes + batch[i].data.size() <= kMaxProposalBatchBytes)) {
      bytes += batch[i].data.size();
      ids.push_back(batch[i].request_id);
      datas.push_back(std::move(batch[i].data));
      ++i;
    }
    absl::Status st = node_->ProposeBatch(std::move(datas));
    if (!st.ok()) {
      for (uint64_t id : ids) FailProposal(id, RaftProposeError(st));
    }
  }
}

// Parked requests go again once a leader is known, or fail once their wait is over.
void RaftDriver::RetryParked() {
  if (parked_proposals_.empty() && parked_reads_.empty()) return;
  int64_t now = NowMs();
  if (HasLeader()) {
    std::vector<Proposal> batch;
    batch.reserve(parked_proposals_.size());
    for (ParkedProposal& p : parked_proposals_) batch.push_back(std::move(p.proposal));
    parked_proposals_.clear();
    ProposeBatch(std::move(batch), 0);
  } else {
    while (!parked_proposals_.empty() && parked_proposals_.front().leader_deadline_ms <= now) {
      FailProposal(parked_proposals_.front().proposal.request_id, MakeError(ErrorKind::kNoLeader));
      parked_proposals_.pop_front();
    }
  }
  std::vector<InFlightRead> rs;
  rs.swap(parked_reads_);
  for (InFlightRead& r : rs) {
    if (HasLeader() || now >= r.leader_deadline_ms || now >= r.deadline_ms) {
      IssueRead(std::move(r));
    } else {
      parked_reads_.push_back(std::move(r));
    }
  }
}

// ---- conf changes ----

// Conf changes waiting to be applied. Raft refuses one while an earlier change is uncommitted (and
// a new leader until its first entry commits), and a leader drops a forwarded one in that case
// without telling the follower: so each is proposed again until its waiter completes (a change
// applied twice is a no-op the second time: ApplyConfChangeToState ignores it) or the request
// times out.
void RaftDriver::ProposeConfChanges() {
  const int64_t now = NowMs();
  for (auto it = pending_ccs_.begin(); it != pending_ccs_.end();) {
    if (CompleteOwnRemoval(*it) || !deps_.waits->Contains(it->request_id)) {
      it = pending_ccs_.erase(it);  // answered here, or applied, timed out or stopped
      continue;
    }
    if (now < it->retry_ms) {
      ++it;
      continue;
    }
    absl::Status st = node_->ProposeConfChange(it->cc);
    if (st.ok()) {
      it->retry_ms = now + deps_.election_timeout_ms;
      it->leader_deadline_ms = 0;
    } else if (st.code() == absl::StatusCode::kFailedPrecondition) {
      it->retry_ms = now + deps_.heartbeat_interval_ms;
    } else if (IsNoLeader(st) && (it->leader_deadline_ms == 0 || now < it->leader_deadline_ms)) {
      if (it->leader_deadline_ms == 0) it->leader_deadline_ms = now + deps_.leader_wait_ms;
      it->retry_ms = now + deps_.heartbeat_interval_ms;
    } else {
      CAIRN_LOG(kWarn, "etcdserver") << "conf change refused by raft: " << st;
      FailProposal(it->request_id, RaftProposeError(st));
      it = pending_ccs_.erase(it);
      continue;
    }
    ++it;
  }
  if (removed_by_peer_.load() && deps_.on_removed) deps_.on_removed();
}

// A peer refused this member as removed: a removal of this member asked for here is in effect
// (the leader stops replicating to a member once its removal is in the log, so this member may
// never apply it). Answers it; true when `pc` was that removal.
bool RaftDriver::CompleteOwnRemoval(const PendingConfChange& pc) {
  if (!removed_by_peer_.load() || pc.cc.type != raft::ConfChangeType::kRemoveNode ||
      pc.cc.node_id != deps_.member_id) {
    return false;
  }
  std::optional<Waiter> w = deps_.waits->Take(pc.request_id);
  if (w && w->member_done) {
    auto self = deps_.membership->Get(deps_.member_id);
    cairnpb::Member out = self ? *self : cairnpb::Member();
    out.set_id(deps_.member_id);
    w->member_done(out);
  }
  return true;
}

// ---- ReadIndex ----

void RaftDriver::IssueRead(InFlightRead r) {
  int64_t now = NowMs();
  absl::Status st = absl::UnavailableError("raft: read index dropped: no leader");
  std::string ctx;
  if (HasLeader()) {
    ctx = absl::StrCat("r", deps_.member_id, ".", ++read_seq_);
    st = node_->ReadIndex(ctx);
  }
  if (!st.ok()) {
    if (r.leader_deadline_ms == 0) r.leader_deadline_ms = now + deps_.leader_wait_ms;
    if (now < r.leader_deadline_ms && now < r.deadline_ms) {
      parked_reads_.push_back(std::move(r));
    } else {
      for (auto& d : r.dones) d(MakeError(ErrorKind::kNoLeader));
    }
    return;
  }
  r.leader_deadline_ms = 0;
  r.retry_ms = now + deps_.election_timeout_ms;
  reads_.emplace(std::move(ctx), std::move(r));
}

// Read-index requests lost with a leader change are re-issued; past the timeout they fail.
void RaftDriver::ExpireReads(int64_t now) {
  std::vector<InFlightRead> retry;
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.deadline_ms <= now) {
      for (auto& d : it->second.dones) d(MakeError(ErrorKind::kTimeout));
      it = reads_.erase(it);
    } else if (it->second.retry_ms <= now) {
      retry.push_back(std::move(it->second));
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& r : retry) IssueRead(std::move(r));
}

// A lone voter's leader answers a ReadIndex with its commit index at once (Raft::HandleReadIndex),
// so any thread may use that index; stored before the Ready that could reveal a higher commit
// index (its messages, its committed entries) goes out, and cleared before a step-down's vote.
void RaftDriver::PublishLocalReadIndex() {
  const raft::Raft& r = node_->raft();
  const auto& voters = r.tracker().voters();
  const bool lone_leader = r.state() == raft::StateType::kLeader && voters.size() == 1 &&
                           voters.contains(deps_.member_id);
  local_read_index_.store(lone_leader ? r.log().committed() : 0);
}

// ---- leadership transfer ----

void RaftDriver::StartTransfers(std::vector<Transfer>& transfers) {
  for (Transfer& t : transfers) {
    if (!IsLeader()) {
      t.done(MakeError(ErrorKind::kNotLeader));
      continue;
    }
    if (t.target == deps_.member_id) {
      t.done(absl::OkStatus());
      continue;
    }
    node_->TransferLeader(t.target);
    transfers_.push_back(std::move(t));
  }
}

void RaftDriver::FinishTransfers(int64_t now, bool timeouts) {
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    if (leader_.load() == it->target) {
      it->done(absl::OkStatus());
      it = transfers_.erase(it);
    } else if (timeouts && it->deadline_ms <= now) {
      it->done(MakeError(ErrorKind::kTimeout));
      it = transfers_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---- Ready ----

void RaftDriver::HandleReady(raft::Ready& rd) {
  // The term first: whoever sees this member as leader then sees the term it leads in.
  if (rd.hard_state) term_ = rd.hard_state->term;
  if (rd.soft_state) {
    uint64_t prev = leader_.exchange(rd.soft_state->leader);
    bool became_leader =
        rd.soft_state->state == raft::StateType::kLeader && prev != deps_.member_id;
    if (prev != rd.soft_state->leader) {
      CAIRN_LOG(kInfo, "etcdserver") << "member " << IdToHex(deps_.member_id) << ": leader is now "
                                     << IdToHex(rd.soft_state->leader);
    }
    if ((became_leader || prev != rd.soft_state->leader) && deps_.on_leader_change) {
      deps_.on_leader_change(rd.soft_state->leader, became_leader);
    }
  }
  PublishLocalReadIndex();  // before the Ready's messages and committed entries
  if (!rd.snapshot.IsEmpty()) InstallReceivedSnapshot(rd.snapshot);
  SendEarly(rd);
  wal_->Save(rd.hard_state, rd.entries);
  wal_entries_.fetch_add(rd.entries.size(), std::memory_order_relaxed);
  if (rd.must_sync) {
    base::Stopwatch fsync;
    wal_->Sync();
    metrics_->wal_fsync_seconds->Observe(fsync.ElapsedSeconds());
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
  }
  if (!rd.entries.empty()) CAIRN_CHECK_OK(storage_->Append(rd.entries));
  if (rd.hard_state) {
    storage_->SetHardState(*rd.hard_state);
    term_ = rd.hard_state->term;
  }
  last_index_ = storage_->LastIndex();
  if (send_ && !rd.messages.empty()) send_(std::move(rd.messages));
  if (!rd.committed_entries.empty()) {
    // The entries move to the applier; Advance needs only the last one's index and term.
    raft::Entry last;
    last.index = rd.committed_entries.back().index;
    last.term = rd.committed_entries.back().term;
    committed_index_.store(last.index);
    for (const raft::Entry& e : rd.committed_entries) bytes_since_snapshot_ += e.data.size();
    deps_.applier->Enqueue(std::move(rd.committed_entries));
    rd.committed_entries.assign(1, std::move(last));
  }
}

// A snapshot from the leader: the store takes it first (durably), then the WAL marker.
void RaftDriver::InstallReceivedSnapshot(const raft::Snapshot& snapshot) {
  uint64_t index = snapshot.metadata.index;
  auto it = received_snapshots_.find(index);
  CAIRN_CHECK(it != received_snapshots_.end()) << "no received file for snapshot " << index;
  std::string path = it->second;
  std::promise<void> installed;
  deps_.applier->EnqueueSnapshot(path, [&installed] { installed.set_value(); });
  if (stepped_) deps_.applier->RunQueued();  // this thread is the applier's too
  installed.get_future().wait();
  wal_->SaveSnapshot(snapshot.metadata);
  wal_->Sync();
  CAIRN_CHECK_OK(storage_->ApplySnapshot(snapshot));
  snapshot_index_ = index;
  bytes_since_snapshot_ = 0;  // the log before the snapshot is gone
  applied_conf_ = snapshot.metadata.conf_state;
  applied_conf_index_ = std::max(applied_conf_index_, index);
  for (auto f = received_snapshots_.begin(); f != received_snapshots_.end();) {
    if (f->first <= index) {
      (void)deps_.env->RemoveFile(f->second);
      f = received_snapshots_.erase(f);
    } else {
      ++f;
    }
  }
}

// A leader sends its appends and heartbeats before its own fsync, so the followers' disk writes
// overlap the leader's (thesis §10.2.1; etcd does the same). Raft counts the leader's entries
// toward commit as soon as they are appended, so this is allowed only while the commit index does
// not pass what the leader has durably (storage_ holds exactly the synced log here): then no
// commit index it sends covers an entry it could lose in a crash. That holds whenever committing
// needs another voter's acknowledgement, because this thread steps acknowledgements only after
// the Ready that carried the entries is durable; it fails for a lone voter (which commits at
// append), which then sends after the fsync. Messages that vouch for local state (votes, append
// responses) always leave after the fsync (rule R1 in raw_node.h).
void RaftDriver::SendEarly(raft::Ready& rd) {
  if (!send_ || rd.messages.empty() || node_->raft().state() != raft::StateType::kLeader ||
      node_->raft().hard_state().commit > storage_->LastIndex()) {
    return;
  }
  std::vector<raft::Message> early;
  std::vector<raft::Message> late;
  for (raft::Message& m : rd.messages) {
    bool replication = m.type == raft::MessageType::kApp || m.type == raft::MessageType::kHeartbeat;
    (replication ? early : late).push_back(std::move(m));
  }
  if (!early.empty()) send_(std::move(early));
  rd.messages = std::move(late);
}

void RaftDriver::MaybeSnapshot() {
  log_bytes_.store(storage_->Bytes(), std::memory_order_relaxed);
  const bool by_entries = applied_conf_index_ >= snapshot_index_ + deps_.snapshot_count;
  const bool by_bytes =
      applied_conf_index_ > snapshot_index_ && bytes_since_snapshot_ >= deps_.snapshot_log_bytes;
  if (!by_entries && !by_bytes) return;
  uint64_t index = applied_conf_index_;
  if (index > storage_->LastIndex()) return;
  // The store must be durable at `index` before the WAL forgets the entries up to it.
  deps_.backend->Sync();
  auto snap = storage_->CreateSnapshot(index, applied_conf_, "");
  if (!snap.ok()) {
    CAIRN_LOG(kWarn, "etcdserver") << "raft snapshot at " << index << ": " << snap.status();
    return;
  }
  const uint64_t compact = storage_->CompactIndexKeeping(index, deps_.snapshot_catch_up_entries,
                                                         deps_.snapshot_catch_up_bytes);
  if (compact > storage_->FirstIndex()) CAIRN_CHECK_OK(storage_->Compact(compact));
  wal_->SaveSnapshot(snap->metadata);
  wal_->Sync();
  wal_->ReleaseTo(index);
  snapshot_index_ = index;
  bytes_since_snapshot_ = 0;
  snapshots_.fetch_add(1, std::memory_order_relaxed);
  log_bytes_.store(storage_->Bytes(), std::memory_order_relaxed);
  CAIRN_LOG(kInfo, "etcdserver") << "raft snapshot at index " << index;
}

}  // namespace cairn::etcdserver
