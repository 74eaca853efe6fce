#include "server/etcdserver/server.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <random>

#include "absl/strings/str_cat.h"
#include "server/base/check.h"
#include "server/base/errors.h"
#include "server/base/logging.h"
#include "server/etcdserver/member_id.h"
#include "server/storage/encoding.h"
#include "server/storage/snapshot.h"

namespace cairn::etcdserver {

using base::ErrorKind;
using base::MakeError;

namespace {

// Raft log entries kept behind a raft snapshot so a slightly slow follower catches up from the
// log rather than by a snapshot (etcd keeps 5,000 too).
constexpr uint64_t kSnapshotCatchUpEntries = 5000;
// Peer messages queued for the raft thread at most; beyond, new ones are dropped (raft copes).
constexpr size_t kMaxInboxMessages = 16384;
// Client proposals drained together go to raft as one batch of at most this many bytes (one
// append on the leader, one forwarded message on a follower); a larger request goes alone.
constexpr size_t kMaxProposalBatchBytes = 1 << 20;
// Read-pool threads running linearizable reads once their index is applied.
constexpr int kReadPoolThreads = 2;
// A learner may be promoted once its match index is at least this share of the leader's (etcd).
constexpr double kLearnerReadyFraction = 0.9;
// etcd's HealthInterval: for --strict-reconfig-check, a peer counts as active once it has been in
// steady contact for this long.
constexpr int64_t kHealthIntervalMs = 5000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void PutMeta(rocksdb::WriteBatch* wb, storage::Backend* b, const char* name, uint64_t v) {
  std::string value;
  storage::PutBE64(&value, v);
  CAIRN_CHECK(wb->Put(b->cf(storage::Cf::kMeta), name, value).ok());
}

std::vector<std::string> Urls(const google::protobuf::RepeatedPtrField<std::string>& urls) {
  return std::vector<std::string>(urls.begin(), urls.end());
}

bool SameUrlSet(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

bool ValidPeerUrl(const std::string& u) {
  constexpr std::string_view kHttp = "http://";
  if (u.rfind(kHttp, 0) != 0) return false;
  std::string rest = u.substr(kHttp.size());
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= rest.size()) return false;
  for (size_t i = colon + 1; i < rest.size(); ++i) {
    if (rest[i] < '0' || rest[i] > '9') return false;
  }
  return rest.find('/') == std::string::npos;
}

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

mvcc::ApplyResult ErrorResult(absl::Status st) {
  mvcc::ApplyResult r;
  r.status = std::move(st);
  return r;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Open / bootstrap

absl::StatusOr<std::unique_ptr<Server>> Server::Open(const ServerConfig& config) {
  std::unique_ptr<Server> s(new Server(config));
  if (s->config_.data_dir.empty()) s->config_.data_dir = s->config_.name + ".cairn";
  if (s->config_.heartbeat_interval_ms <= 0 ||
      s->config_.election_timeout_ms < 5 * s->config_.heartbeat_interval_ms) {
    // etcd: "--election-timeout[...] should be 5 times greater than --heartbeat-interval"
    return absl::InvalidArgumentError(
        "--election-timeout must be at least 5 times --heartbeat-interval");
  }
  std::error_code ec;
  std::filesystem::create_directories(s->config_.data_dir + "/member/snap", ec);
  if (ec) return absl::InternalError("create " + s->config_.data_dir + ": " + ec.message());
  auto backend = storage::Backend::Open(s->config_.data_dir + "/member/db");
  if (!backend.ok()) return backend.status();
  s->backend_ = std::move(*backend);
  absl::Status resumed = storage::ResumePendingInstall(s->backend_.get());
  if (!resumed.ok()) return resumed;
  s->membership_ = std::make_unique<Membership>(s->backend_.get());
  s->membership_->Load();

  absl::Status boot = s->Bootstrap();
  if (!boot.ok()) return boot;

  s->kv_ = std::make_unique<mvcc::KvStore>(s->backend_.get());
  s->watch_hub_ =
      std::make_unique<mvcc::WatchHub>(s->kv_.get(), s->config_.watch_progress_notify_interval_ms);
  // etcd: minTTL = (3 * electionTicks / 2) heartbeats, rounded up to whole seconds.
  int64_t ticks = std::max<int64_t>(
      1, s->config_.election_timeout_ms / std::max<int64_t>(1, s->config_.heartbeat_interval_ms));
  int64_t min_ttl_ms = (3 * ticks / 2) * s->config_.heartbeat_interval_ms;
  s->lessor_ = std::make_unique<lease::Lessor>(NowMs, (min_ttl_ms + 999) / 1000);
  s->lessor_->Restore(s->kv_->Leases());
  s->applied_ = s->kv_->applied_index();

  // Peers: the applied membership, plus (on a first start) the members known from the flags or
  // from the cluster we join, so that raft can talk before the membership is applied.
  size_t voters = 0;
  std::map<uint64_t, std::vector<std::string>> peers;
  for (const auto& m : s->initial_peers_) peers[m.id()] = Urls(m.peer_urls());
  for (const auto& m : s->membership_->Members()) {
    peers[m.id()] = Urls(m.peer_urls());
    if (!m.is_learner()) ++voters;
  }
  voters = std::max(voters, s->initial_peers_.size());
  if (!s->config_.listen_peer_urls.empty()) {
    auto t =
        transport::Transport::Start(s->config_.listen_peer_urls, s->cluster_id_.load(),
                                    s->member_id_, s->config_.data_dir + "/member/snap", s.get());
    if (!t.ok()) return t.status();
    s->transport_ = std::move(*t);
    for (const auto& [id, urls] : peers) {
      if (id != s->member_id_) s->transport_->AddPeer(id, urls);
    }
  } else if (peers.size() > 1) {
    return absl::InvalidArgumentError(
        "--listen-peer-urls is required for a cluster of more than one member");
  }

  s->raft_thread_ = std::thread([raw = s.get()] { raw->RaftLoop(); });
  s->applier_ = std::thread([raw = s.get()] { raw->ApplierLoop(); });
  s->lease_timer_ = std::thread([raw = s.get()] { raw->LeaseLoop(); });
  s->admin_thread_ = std::thread([raw = s.get()] { raw->AdminLoop(); });
  for (int i = 0; i < kReadPoolThreads; ++i) {
    s->read_pool_.emplace_back([raw = s.get()] { raw->ReadPoolLoop(); });
  }
  CAIRN_LOG(kInfo, "etcdserver") << "member " << IdToHex(s->member_id_) << " of cluster "
                                 << IdToHex(s->cluster_id_.load())
                                 << " started, applied index=" << s->applied_.load()
                                 << " revision=" << s->kv_->View().revision;
  return s;
}

absl::Status Server::Bootstrap() {
  storage::Backend* b = backend_.get();
  env_ = wal::Env::Posix();
  const std::string wal_dir = config_.data_dir + "/member/wal";
  member_id_ = static_cast<uint64_t>(b->ReadMetaInt("member_id", 0));
  if (wal::WalExists(env_, wal_dir)) {
    // Restart: identity and membership come from the data dir; the --initial-* flags are ignored.
    if (member_id_ == 0) return absl::DataLossError("data dir has a WAL but no member id");
    cluster_id_ = static_cast<uint64_t>(b->ReadMetaInt("cluster_id", 0));
    auto wal = wal::Wal::Open(env_, wal_dir);
    if (!wal.ok()) return wal.status();
    wal_ = std::move(*wal);
    wal::WalContents contents = wal_->ReadAll();
    storage_ = std::make_unique<raft::MemoryStorage>();
    absl::Status loaded = wal::LoadIntoStorage(contents, "", storage_.get());
    if (!loaded.ok()) return loaded;
    snapshot_index_ = contents.snapshot.index;
    applied_conf_ = contents.snapshot.conf_state;
    applied_conf_index_ = snapshot_index_;
    if (static_cast<uint64_t>(b->ReadMetaInt("applied_index", 0)) < snapshot_index_) {
      return absl::DataLossError("the store is behind the WAL's snapshot");
    }
  } else {
    if (b->ReadMetaInt("applied_index", 0) > 0) {
      return absl::DataLossError("data dir has a store but no WAL (" + wal_dir + ")");
    }
    std::vector<raft::Entry> entries;
    std::vector<std::pair<std::string, std::vector<std::string>>> initial = config_.initial_cluster;
    if (initial.empty()) initial.push_back({config_.name, config_.initial_advertise_peer_urls});
    if (!config_.initial_cluster_state_existing) {
      std::vector<cairnpb::Member> members;
      bool found = false;
      for (const auto& [name, urls] : initial) {
        cairnpb::Member m;
        m.set_id(ComputeMemberId(urls, config_.initial_cluster_token));
        m.set_name(name);
        for (const auto& u : urls) m.add_peer_urls(u);
        if (name == config_.name) {
          if (!SameUrlSet(urls, config_.initial_advertise_peer_urls)) {
            return absl::InvalidArgumentError("--initial-cluster has peer URLs for \"" +
                                              config_.name +
                                              "\" that differ from --initial-advertise-peer-urls");
          }
          found = true;
          member_id_ = m.id();
        }
        members.push_back(std::move(m));
      }
      if (!found) {
        return absl::InvalidArgumentError("--initial-cluster has no member named \"" +
                                          config_.name + "\"");
      }
      std::sort(members.begin(), members.end(),
                [](const cairnpb::Member& x, const cairnpb::Member& y) { return x.id() < y.id(); });
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < members.size(); ++i) {
        if (i > 0 && members[i].id() == members[i - 1].id()) {
          return absl::InvalidArgumentError("--initial-cluster has duplicate peer URLs");
        }
        ids.push_back(members[i].id());
        cairnpb::InternalRequest ctx;
        *ctx.mutable_member_change() = members[i];
        raft::Entry e;
        e.term = 1;
        e.index = i + 1;
        e.type = raft::EntryType::kConfChange;
        e.data = raft::EncodeConfChange(raft::ConfChange{raft::ConfChangeType::kAddNode,
                                                         members[i].id(), ctx.SerializeAsString()});
        entries.push_back(std::move(e));
      }
      cluster_id_ = ComputeClusterId(ids);
      initial_peers_ = members;
    } else {
      std::vector<std::string> urls;
      for (const auto& [name, u] : initial) {
        if (name != config_.name) urls.insert(urls.end(), u.begin(), u.end());
      }
      if (urls.empty()) {
        return absl::InvalidArgumentError(
            "--initial-cluster-state existing needs the other members in --initial-cluster");
      }
      auto resp = transport::Transport::FetchMembers(urls, 5000);
      if (!resp.ok()) {
        return absl::UnavailableError(absl::StrCat("cannot fetch the cluster's members from ",
                                                   urls[0], ": ", resp.status().message()));
      }
      for (const auto& m : resp->members()) {
        for (const auto& u : m.peer_urls()) {
          if (std::find(config_.initial_advertise_peer_urls.begin(),
                        config_.initial_advertise_peer_urls.end(),
                        u) != config_.initial_advertise_peer_urls.end()) {
            member_id_ = m.id();
          }
        }
        initial_peers_.push_back(m);
      }
      if (member_id_ == 0) {
        return absl::FailedPreconditionError(
            "this member's --initial-advertise-peer-urls are not in the cluster: add it with "
            "MemberAdd first");
      }
      cluster_id_ = resp->cluster_id();
    }
    rocksdb::WriteBatch wb;
    PutMeta(&wb, b, "member_id", member_id_);
    PutMeta(&wb, b, "cluster_id", cluster_id_.load());
    CAIRN_CHECK(wb.Put(b->cf(storage::Cf::kMeta), "member_name", config_.name).ok());
    b->Write(&wb);
    b->Sync();
    auto wal = wal::Wal::Create(env_, wal_dir);
    if (!wal.ok()) return wal.status();
    wal_ = std::move(*wal);
    (void)wal_->ReadAll();
    storage_ = std::make_unique<raft::MemoryStorage>();
    if (!entries.empty()) {
      raft::HardState hs{1, raft::kNoMember, entries.size()};
      wal_->Save(hs, entries);
      wal_->Sync();
      CAIRN_CHECK_OK(storage_->Append(entries));
      storage_->SetHardState(hs);
    }
  }
  raft::Config rc;
  rc.id = member_id_;
  rc.heartbeat_tick = 1;
  rc.election_tick = static_cast<int>(config_.election_timeout_ms / config_.heartbeat_interval_ms);
  rc.storage = storage_.get();
  // Replay every entry after the WAL's snapshot marker: the applier skips those the store already
  // holds, and the applied configuration is rebuilt from the conf changes among them.
  rc.applied = snapshot_index_;
  rc.random_seed = std::random_device{}() ^ member_id_ ^ static_cast<uint64_t>(NowMs());
  auto node = raft::RawNode::Create(rc);
  if (!node.ok()) return node.status();
  node_ = std::move(*node);
  last_index_ = storage_->LastIndex();
  term_ = storage_->hard_state().term;
  next_request_id_ = (static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count())
                      << 20);
  return absl::OkStatus();
}

Server::~Server() { Stop(); }

bool Server::is_learner() const { return membership_->IsLearner(member_id_); }

void Server::FillHeader(etcdserverpb::ResponseHeader* header) const {
  header->set_cluster_id(cluster_id_.load());
  header->set_member_id(member_id_);
  header->set_raft_term(term_.load());
}

std::vector<int> Server::peer_ports() const {
  return transport_ ? transport_->BoundPorts() : std::vector<int>{};
}

// ---------------------------------------------------------------------------------------------
// Client entry points

void Server::Propose(cairnpb::InternalRequest request, Done done) {
  // etcd checks the size of the marshalled log entry against --max-request-bytes.
  if (static_cast<int64_t>(request.ByteSizeLong()) > config_.max_request_bytes) {
    done(ErrorResult(MakeError(ErrorKind::kRequestTooLarge)));
    return;
  }
  if (is_learner()) {
    done(ErrorResult(MakeError(ErrorKind::kNotSupportedForLearner)));
    return;
  }
  ProposeInternal(std::move(request), std::move(done));
}

void Server::ProposeInternal(cairnpb::InternalRequest request, Done done) {
  uint64_t id = NextRequestId();
  request.set_id(id);
  request.set_proposer(member_id_);
  {
    std::lock_guard<std::mutex> w(wait_mu_);
    if (waiters_.size() >= config_.max_pending_proposals) {
      done(ErrorResult(MakeError(ErrorKind::kTooManyRequests)));
      return;
    }
  }
  std::string data = request.SerializeAsString();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) {
      done(ErrorResult(MakeError(ErrorKind::kStopped)));
      return;
    }
    AddWaiter(id, Waiter{std::move(done), nullptr, 0});
    inbox_proposals_.push_back(Proposal{id, std::move(data)});
  }
  cv_.notify_one();
}

void Server::ReadBarrier(StatusDone done) {
  if (is_learner()) {
    done(MakeError(ErrorKind::kNotSupportedForLearner));
    return;
  }
  std::unique_lock<std::mutex> l(mu_);
  if (stopping_) {
    l.unlock();
    done(MakeError(ErrorKind::kStopped));
    return;
  }
  inbox_reads_.push_back(std::move(done));
  l.unlock();
  cv_.notify_one();
}

// ---------------------------------------------------------------------------------------------
// Raft thread

void Server::RaftLoop() {
  struct InFlightRead {
    std::vector<StatusDone> dones;
    int64_t deadline_ms;
    int64_t retry_ms;
    int64_t leader_deadline_ms = 0;  // set while parked for want of a leader
  };
  std::map<std::string, InFlightRead> reads;  // by read-index context
  uint64_t read_seq = 0;
  std::vector<Transfer> transfers;
  const int64_t hb = config_.heartbeat_interval_ms;
  int64_t next_tick = NowMs() + hb;
  {
    // A lone voter need not wait an election timeout to lead (etcd campaigns at once too).
    raft::NodeStatus st = node_->GetStatus();
    if (st.conf_state.voters.size() == 1 && st.conf_state.voters[0] == member_id_) {
      (void)node_->Campaign();
    }
  }

  // Conf changes waiting to be applied. Raft refuses one while an earlier change is uncommitted
  // (and a new leader until its first entry commits), and a leader drops a forwarded one in that
  // case without telling the follower: so each is proposed again until its waiter completes
  // (a change applied twice is a no-op the second time: ApplyConfChangeToState ignores it) or
  // the request times out.
  std::vector<PendingConfChange> pending_ccs;
  auto propose_conf_changes = [&] {
    int64_t now = NowMs();
    const bool removed = removed_by_peer_.load();
    for (auto it = pending_ccs.begin(); it != pending_ccs.end();) {
      if (removed && it->cc.type == raft::ConfChangeType::kRemoveNode &&
          it->cc.node_id == member_id_) {
        // A peer refused this member as removed: the removal asked for here is in effect (the
        // leader stops replicating to a member once its removal is in the log, so this member
        // may never apply it).
        std::optional<Waiter> w = TakeWaiter(it->request_id);
        if (w && w->member_done) {
          auto self = membership_->Get(member_id_);
          cairnpb::Member out = self ? *self : cairnpb::Member();
          out.set_id(member_id_);
          w->member_done(out);
        }
        it = pending_ccs.erase(it);
        continue;
      }
      {
        std::lock_guard<std::mutex> g(wait_mu_);
        if (waiters_.count(it->request_id) == 0) {  // applied, timed out or stopped
          it = pending_ccs.erase(it);
          continue;
        }
      }
      if (now < it->retry_ms) {
        ++it;
        continue;
      }
      absl::Status st = node_->ProposeConfChange(it->cc);
      if (st.ok()) {
        it->retry_ms = now + config_.election_timeout_ms;
        it->leader_deadline_ms = 0;
      } else if (st.code() == absl::StatusCode::kFailedPrecondition) {
        it->retry_ms = now + hb;
      } else if (IsNoLeader(st) && (it->leader_deadline_ms == 0 || now < it->leader_deadline_ms)) {
        if (it->leader_deadline_ms == 0) it->leader_deadline_ms = now + LeaderWaitMs();
        it->retry_ms = now + hb;
      } else {
        CAIRN_LOG(kWarn, "etcdserver") << "conf change refused by raft: " << st;
        std::optional<Waiter> w = TakeWaiter(it->request_id);
        if (w && w->member_done) w->member_done(RaftProposeError(st));
        it = pending_ccs.erase(it);
        continue;
      }
      ++it;
    }
  };

  // Requests that meet this member without a leader (an election, a leadership transfer) wait
  // for one, as etcd's raft node holds proposals while it has no leader, but only LeaderWaitMs():
  // then they fail with "no leader", so a client of a cut-off member can go elsewhere quickly.
  struct ParkedProposal {
    Proposal proposal;
    int64_t leader_deadline_ms;
  };
  std::deque<ParkedProposal> parked_proposals;  // in deadline order
  std::vector<InFlightRead> parked_reads;
  auto has_leader = [&] { return node_->raft().soft_state().leader != raft::kNoMember; };

  auto issue_read = [&](InFlightRead r) {
    int64_t now = NowMs();
    absl::Status st = absl::UnavailableError("raft: read index dropped: no leader");
    std::string ctx;
    if (has_leader()) {
      ctx = absl::StrCat("r", member_id_, ".", ++read_seq);
      st = node_->ReadIndex(ctx);
    }
    if (!st.ok()) {
      if (r.leader_deadline_ms == 0) r.leader_deadline_ms = now + LeaderWaitMs();
      if (now < r.leader_deadline_ms && now < r.deadline_ms) {
        parked_reads.push_back(std::move(r));
      } else {
        for (auto& d : r.dones) d(MakeError(ErrorKind::kNoLeader));
      }
      return;
    }
    r.leader_deadline_ms = 0;
    r.retry_ms = now + config_.election_timeout_ms;
    reads.emplace(std::move(ctx), std::move(r));
  };

  auto fail_proposal = [&](uint64_t request_id, const absl::Status& st) {
    std::optional<Waiter> w = TakeWaiter(request_id);
    if (w && w->done) w->done(ErrorResult(st));
  };

  // Proposes `batch` as few raft proposals (each at most kMaxProposalBatchBytes, one entry per
  // request): one append on the leader, one forwarded message on a follower. Without a leader the
  // requests are parked until `leader_deadline_ms` (0: from now on); any other error fails them.
  auto propose = [&](std::vector<Proposal> batch, int64_t leader_deadline_ms) {
    if (batch.empty()) return;
    int64_t now = NowMs();
    if (!has_leader()) {
      if (leader_deadline_ms == 0) leader_deadline_ms = now + LeaderWaitMs();
      for (Proposal& p : batch) {
        if (now < leader_deadline_ms) {
          parked_proposals.push_back(ParkedProposal{std::move(p), leader_deadline_ms});
        } else {
          fail_proposal(p.request_id, MakeError(ErrorKind::kNoLeader));
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
        for (uint64_t id : ids) fail_proposal(id, RaftProposeError(st));
      }
    }
  };

  // Parked requests go again once a leader is known, or fail once their wait is over.
  auto retry_parked = [&] {
    if (parked_proposals.empty() && parked_reads.empty()) return;
    int64_t now = NowMs();
    if (has_leader()) {
      std::vector<Proposal> batch;
      batch.reserve(parked_proposals.size());
      for (ParkedProposal& p : parked_proposals) batch.push_back(std::move(p.proposal));
      parked_proposals.clear();
      propose(std::move(batch), 0);
    } else {
      while (!parked_proposals.empty() && parked_proposals.front().leader_deadline_ms <= now) {
        fail_proposal(parked_proposals.front().proposal.request_id,
                      MakeError(ErrorKind::kNoLeader));
        parked_proposals.pop_front();
      }
    }
    std::vector<InFlightRead> rs;
    rs.swap(parked_reads);
    for (InFlightRead& r : rs) {
      if (has_leader() || now >= r.leader_deadline_ms || now >= r.deadline_ms) {
        issue_read(std::move(r));
      } else {
        parked_reads.push_back(std::move(r));
      }
    }
  };

  while (true) {
    std::vector<Proposal> proposals;
    std::vector<raft::Message> messages;
    std::vector<std::pair<raft::Message, std::string>> snapshots;
    std::vector<StatusDone> new_reads;
    std::vector<PendingConfChange> conf_changes;
    std::vector<Transfer> new_transfers;
    std::vector<uint64_t> unreachable;
    std::vector<std::pair<uint64_t, bool>> snap_status;
    std::vector<std::pair<uint64_t, raft::ConfChange>> applied_confs;
    uint64_t applied_index = 0;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_until(l, std::chrono::steady_clock::time_point(std::chrono::milliseconds(next_tick)),
                     [&] {
                       return stopping_ || inbox_wake_ || !inbox_proposals_.empty() ||
                              !inbox_messages_.empty() || !inbox_reads_.empty();
                     });
      if (stopping_) break;
      proposals.swap(inbox_proposals_);
      messages.swap(inbox_messages_);
      snapshots.swap(inbox_snapshots_);
      new_reads.swap(inbox_reads_);
      conf_changes.swap(inbox_conf_changes_);
      new_transfers.swap(inbox_transfers_);
      unreachable.swap(inbox_unreachable_);
      snap_status.swap(inbox_snapshot_status_);
      applied_confs.swap(inbox_applied_conf_);
      applied_index = inbox_applied_index_;
      inbox_wake_ = false;
    }
    for (auto& [index, cc] : applied_confs) {
      applied_conf_ = node_->ApplyConfChange(cc);
      applied_conf_index_ = std::max(applied_conf_index_, index);
    }
    applied_conf_index_ = std::max(applied_conf_index_, applied_index);
    for (const auto& m : messages) (void)node_->Step(m);
    for (auto& [m, path] : snapshots) {
      uint64_t index = m.snapshot->metadata.index;
      auto it = received_snapshots_.find(index);
      if (it != received_snapshots_.end() && it->second != path) {
        std::filesystem::remove(it->second);
      }
      received_snapshots_[index] = path;
      (void)node_->Step(m);
    }
    for (uint64_t id : unreachable) node_->ReportUnreachable(id);
    for (auto& [id, ok] : snap_status) node_->ReportSnapshot(id, !ok);

    retry_parked();  // before the new ones, so requests keep their order
    propose(std::move(proposals), 0);
    for (PendingConfChange& pc : conf_changes) {
      pc.retry_ms = 0;  // propose now
      pending_ccs.push_back(std::move(pc));
    }
    propose_conf_changes();
    if (removed_by_peer_.load()) ShutDownRemoved();
    if (!new_reads.empty()) {
      int64_t now = NowMs();
      issue_read(InFlightRead{std::move(new_reads), now + RequestTimeoutMs(), 0});
    }
    for (Transfer& t : new_transfers) {
      if (!is_leader()) {
        t.done(MakeError(ErrorKind::kNotLeader));
        continue;
      }
      if (t.target == member_id_) {
        t.done(absl::OkStatus());
        continue;
      }
      node_->TransferLeader(t.target);
      transfers.push_back(std::move(t));
    }

    int64_t now = NowMs();
    if (now >= next_tick) {
      node_->Tick();
      next_tick += hb;
      if (next_tick <= now) next_tick = now + hb;  // fell behind: do not burst ticks
      // Requests that outlived the request timeout.
      std::vector<Waiter> expired;
      {
        std::lock_guard<std::mutex> g(wait_mu_);
        while (!waiter_deadlines_.empty() && waiter_deadlines_.front().first <= now) {
          auto it = waiters_.find(waiter_deadlines_.front().second);
          waiter_deadlines_.pop_front();
          if (it == waiters_.end()) continue;
          expired.push_back(std::move(it->second));
          waiters_.erase(it);
        }
      }
      for (Waiter& w : expired) {
        absl::Status err = MakeError(ErrorKind::kTimeout);
        if (w.done) w.done(ErrorResult(err));
        if (w.member_done) w.member_done(err);
      }
      // Read-index requests lost with a leader change are re-issued; past the timeout they fail.
      std::vector<InFlightRead> retry;
      for (auto it = reads.begin(); it != reads.end();) {
        if (it->second.deadline_ms <= now) {
          for (auto& d : it->second.dones) d(MakeError(ErrorKind::kTimeout));
          it = reads.erase(it);
        } else if (it->second.retry_ms <= now) {
          retry.push_back(std::move(it->second));
          it = reads.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& r : retry) issue_read(std::move(r));
      propose_conf_changes();
      for (auto it = transfers.begin(); it != transfers.end();) {
        if (leader_.load() == it->target) {
          it->done(absl::OkStatus());
          it = transfers.erase(it);
        } else if (it->deadline_ms <= now) {
          it->done(MakeError(ErrorKind::kTimeout));
          it = transfers.erase(it);
        } else {
          ++it;
        }
      }
      if (is_leader()) {
        raft::NodeStatus st = node_->GetStatus();
        std::lock_guard<std::mutex> l(mu_);
        progress_match_.clear();
        for (const auto& [id, pr] : st.progress) progress_match_[id] = pr.match;
      }
    }

    while (node_->HasReady()) {
      raft::Ready rd = node_->GetReady();
      HandleReady(rd);
      // Read states: wait for the applier to reach their index.
      for (const raft::ReadState& rs : rd.read_states) {
        auto it = reads.find(rs.request_ctx);
        if (it == reads.end()) continue;
        std::vector<StatusDone> dones = std::move(it->second.dones);
        reads.erase(it);
        std::lock_guard<std::mutex> l(read_mu_);
        for (auto& d : dones) {
          if (applied_.load() >= rs.index) {
            read_ready_.push_back([d = std::move(d)] { d(absl::OkStatus()); });
          } else {
            reads_waiting_apply_.emplace(rs.index, std::move(d));
          }
        }
        read_cv_.notify_all();
      }
      node_->Advance(rd);
    }
    for (auto it = transfers.begin(); it != transfers.end();) {
      if (leader_.load() == it->target) {
        it->done(absl::OkStatus());
        it = transfers.erase(it);
      } else {
        ++it;
      }
    }
    MaybeSnapshot();
  }
  // Stopping: end what is still in flight here.
  for (auto& [ctx, r] : reads) {
    for (auto& d : r.dones) d(MakeError(ErrorKind::kStopped));
  }
  for (InFlightRead& r : parked_reads) {
    for (auto& d : r.dones) d(MakeError(ErrorKind::kStopped));
  }
  for (Transfer& t : transfers) t.done(MakeError(ErrorKind::kStopped));
}

void Server::HandleReady(raft::Ready& rd) {
  // The term first: whoever sees this member as leader then sees the term it leads in.
  if (rd.hard_state) term_ = rd.hard_state->term;
  if (rd.soft_state) {
    uint64_t prev = leader_.exchange(rd.soft_state->leader);
    bool now_leader = rd.soft_state->state == raft::StateType::kLeader;
    if (now_leader && prev != member_id_) OnBecameLeader();
    if (prev != rd.soft_state->leader) {
      CAIRN_LOG(kInfo, "etcdserver") << "member " << IdToHex(member_id_) << ": leader is now "
                                     << IdToHex(rd.soft_state->leader);
      if (rd.soft_state->leader != 0) PublishAttributes();
    }
  }
  if (!rd.snapshot.IsEmpty()) {
    // A snapshot from the leader: the store takes it first (durably), then the WAL marker.
    uint64_t index = rd.snapshot.metadata.index;
    auto it = received_snapshots_.find(index);
    CAIRN_CHECK(it != received_snapshots_.end()) << "no received file for snapshot " << index;
    std::string path = it->second;
    std::promise<void> installed;
    {
      std::lock_guard<std::mutex> l(apply_mu_);
      ApplyJob job;
      job.snapshot_path = path;
      job.callback = [&installed] { installed.set_value(); };
      apply_queue_.push_back(std::move(job));
    }
    apply_cv_.notify_one();
    installed.get_future().wait();
    wal_->SaveSnapshot(rd.snapshot.metadata);
    wal_->Sync();
    CAIRN_CHECK_OK(storage_->ApplySnapshot(rd.snapshot));
    snapshot_index_ = index;
    applied_conf_ = rd.snapshot.metadata.conf_state;
    applied_conf_index_ = std::max(applied_conf_index_, index);
    for (auto f = received_snapshots_.begin(); f != received_snapshots_.end();) {
      if (f->first <= index) {
        std::filesystem::remove(f->second);
        f = received_snapshots_.erase(f);
      } else {
        ++f;
      }
    }
  }
  // A leader sends its appends and heartbeats before its own fsync, so the followers' disk
  // writes overlap the leader's (thesis §10.2.1; etcd does the same). Raft counts the leader's
  // entries toward commit as soon as they are appended, so this is allowed only while the commit
  // index does not pass what the leader has durably (storage_ holds exactly the synced log here):
  // then no commit index it sends covers an entry it could lose in a crash. That holds whenever
  // committing needs another voter's acknowledgement, because this thread steps acknowledgements
  // only after the Ready that carried the entries is durable; it fails for a lone voter (which
  // commits at append), which then sends after the fsync. Messages that vouch for local state
  // (votes, append responses) always leave after the fsync (rule R1 in raw_node.h).
  if (transport_ && !rd.messages.empty() && node_->raft().state() == raft::StateType::kLeader &&
      node_->raft().hard_state().commit <= storage_->LastIndex()) {
    std::vector<raft::Message> early;
    std::vector<raft::Message> late;
    for (raft::Message& m : rd.messages) {
      bool replication =
          m.type == raft::MessageType::kApp || m.type == raft::MessageType::kHeartbeat;
      (replication ? early : late).push_back(std::move(m));
    }
    if (!early.empty()) transport_->Send(std::move(early));
    rd.messages = std::move(late);
  }
  wal_->Save(rd.hard_state, rd.entries);
  wal_entries_.fetch_add(rd.entries.size(), std::memory_order_relaxed);
  if (rd.must_sync) {
    wal_->Sync();
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
  }
  if (!rd.entries.empty()) CAIRN_CHECK_OK(storage_->Append(rd.entries));
  if (rd.hard_state) {
    storage_->SetHardState(*rd.hard_state);
    term_ = rd.hard_state->term;
  }
  last_index_ = storage_->LastIndex();
  if (transport_ && !rd.messages.empty()) transport_->Send(std::move(rd.messages));
  if (!rd.committed_entries.empty()) {
    // The entries move to the applier; Advance needs only the last one's index and term.
    raft::Entry last;
    last.index = rd.committed_entries.back().index;
    last.term = rd.committed_entries.back().term;
    {
      std::lock_guard<std::mutex> l(apply_mu_);
      ApplyJob job;
      job.entries = std::move(rd.committed_entries);
      apply_queue_.push_back(std::move(job));
    }
    apply_cv_.notify_one();
    rd.committed_entries.assign(1, std::move(last));
  }
}

void Server::MaybeSnapshot() {
  if (applied_conf_index_ < snapshot_index_ + config_.snapshot_count) return;
  uint64_t index = applied_conf_index_;
  if (index > storage_->LastIndex()) return;
  // The store must be durable at `index` before the WAL forgets the entries up to it.
  backend_->Sync();
  auto snap = storage_->CreateSnapshot(index, applied_conf_, "");
  if (!snap.ok()) {
    CAIRN_LOG(kWarn, "etcdserver") << "raft snapshot at " << index << ": " << snap.status();
    return;
  }
  if (index > kSnapshotCatchUpEntries && index - kSnapshotCatchUpEntries > storage_->FirstIndex()) {
    CAIRN_CHECK_OK(storage_->Compact(index - kSnapshotCatchUpEntries));
  }
  wal_->SaveSnapshot(snap->metadata);
  wal_->Sync();
  wal_->ReleaseTo(index);
  snapshot_index_ = index;
  CAIRN_LOG(kInfo, "etcdserver") << "raft snapshot at index " << index;
}

// ---------------------------------------------------------------------------------------------
// Applier thread

void Server::ApplierLoop() {
  while (true) {
    std::deque<ApplyJob> jobs;
    {
      std::unique_lock<std::mutex> l(apply_mu_);
      apply_cv_.wait(l, [&] { return apply_stopping_ || !apply_queue_.empty(); });
      if (apply_queue_.empty()) return;  // stopping and drained
      jobs.swap(apply_queue_);
    }
    // Consecutive entry jobs are applied as one batch (one publish, one watcher notification).
    std::vector<raft::Entry> batch;
    auto flush = [&] {
      if (!batch.empty()) ApplyEntries(batch);
      batch.clear();
    };
    for (ApplyJob& job : jobs) {
      if (!job.snapshot_path.empty()) {
        flush();
        InstallSnapshot(job.snapshot_path);
      }
      for (raft::Entry& e : job.entries) batch.push_back(std::move(e));
      if (batch.size() >= config_.max_batch_entries) flush();
      if (job.callback) {
        flush();
        job.callback();
      }
    }
    flush();
  }
}

void Server::ApplyEntries(std::vector<raft::Entry>& entries) {
  struct Applied {
    uint64_t proposer;
    uint64_t id;
    mvcc::ApplyResult result;
  };
  std::vector<Applied> results;
  std::vector<std::pair<uint64_t, raft::ConfChange>> confs;
  const uint64_t store_applied = kv_->applied_index();
  bool wrote = false;
  for (const raft::Entry& e : entries) {
    bool skip = e.index <= store_applied;
    if (e.type == raft::EntryType::kConfChange) {
      auto cc = raft::DecodeConfChange(e.data);
      CAIRN_CHECK(cc.ok()) << "corrupt conf change at " << e.index;
      ApplyConfChangeEntry(e, skip);
      confs.emplace_back(e.index, *cc);
      wrote = wrote || !skip;
      continue;
    }
    if (e.data.empty() || skip) continue;  // a leader's no-op, or already in the store
    cairnpb::InternalRequest r;
    CAIRN_CHECK(r.ParseFromString(e.data)) << "corrupt entry at " << e.index;
    wrote = true;
    if (r.has_member_attrs() || r.has_member_update()) {
      ApplyMemberEntry(e.index, r);
      results.push_back({r.proposer(), r.id(), mvcc::ApplyResult{}});
      continue;
    }
    results.push_back({r.proposer(), r.id(), kv_->Apply(e.index, r)});
  }
  if (wrote) kv_->Publish();
  applied_ = std::max(applied_.load(), entries.back().index);
  entries_.fetch_add(entries.size(), std::memory_order_relaxed);
  for (const Applied& a : results) {
    const mvcc::ApplyResult& r = a.result;
    if (r.revision > 0) watch_hub_->Notify(r.revision, r.events);
    for (const auto& g : r.leases_granted) lessor_->OnGranted(g);
    for (int64_t id : r.leases_revoked) lessor_->OnRevoked(id);
    for (const auto& c : r.leases_checkpointed) lessor_->OnCheckpointed(c);
  }
  for (Applied& a : results) {
    if (a.proposer != member_id_) continue;
    std::optional<Waiter> w = TakeWaiter(a.id);
    if (w && w->done) w->done(std::move(a.result));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& c : confs) inbox_applied_conf_.push_back(std::move(c));
    inbox_applied_index_ = std::max(inbox_applied_index_, applied_.load());
    inbox_wake_ = true;
  }
  cv_.notify_one();
  {
    std::lock_guard<std::mutex> l(read_mu_);
    uint64_t applied = applied_.load();
    while (!reads_waiting_apply_.empty() && reads_waiting_apply_.begin()->first <= applied) {
      read_ready_.push_back(
          [d = std::move(reads_waiting_apply_.begin()->second)] { d(absl::OkStatus()); });
      reads_waiting_apply_.erase(reads_waiting_apply_.begin());
    }
  }
  read_cv_.notify_all();
}

void Server::ApplyConfChangeEntry(const raft::Entry& e, bool skip) {
  raft::ConfChange cc = *raft::DecodeConfChange(e.data);
  cairnpb::InternalRequest ctx;
  if (!cc.context.empty()) CAIRN_CHECK(ctx.ParseFromString(cc.context));
  raft::ConfState before = membership_->ConfState();
  absl::Status valid = raft::ValidateConfChange(before, cc);
  bool removed_self = false;
  if (!skip) {
    rocksdb::WriteBatch wb;
    if (valid.ok()) {
      if (cc.type == raft::ConfChangeType::kRemoveNode) {
        membership_->Remove(cc.node_id, &wb);
        removed_self = cc.node_id == member_id_;
        if (transport_ && cc.node_id != member_id_) transport_->RemovePeer(cc.node_id);
      } else {
        cairnpb::Member m = ctx.member_change();
        m.set_id(cc.node_id);
        m.set_is_learner(cc.type == raft::ConfChangeType::kAddLearnerNode);
        membership_->Add(m, &wb);
        if (transport_ && cc.node_id != member_id_) {
          auto stored = membership_->Get(cc.node_id);
          if (stored) transport_->AddPeer(cc.node_id, Urls(stored->peer_urls()));
        }
      }
      backend_->Write(&wb);
    }
    kv_->Apply(e.index, cairnpb::InternalRequest());  // moves the applied index
  }
  if (ctx.proposer() == member_id_ && ctx.id() != 0) {
    std::optional<Waiter> w = TakeWaiter(ctx.id());
    if (w && w->member_done) {
      if (!valid.ok()) {
        w->member_done(cc.type == raft::ConfChangeType::kRemoveNode
                           ? MakeError(ErrorKind::kMemberNotFound)
                           : MakeError(ErrorKind::kMemberExist));
      } else {
        auto m = membership_->Get(cc.node_id);
        cairnpb::Member out = m ? *m : ctx.member_change();
        out.set_id(cc.node_id);
        w->member_done(out);
      }
    }
  }
  if (removed_self) ShutDownRemoved();
}

void Server::ShutDownRemoved() {
  if (shutdown_raised_.exchange(true)) return;
  CAIRN_LOG(kWarn, "etcdserver")
      << "this member has been permanently removed from the cluster; shutting down";
  // main() waits for SIGTERM and shuts down cleanly.
  kill(getpid(), SIGTERM);
}

bool Server::IsRemovedMember(uint64_t id) { return membership_->IsRemoved(id); }

void Server::OnRemovedFromCluster() {
  if (removed_by_peer_.exchange(true)) return;
  CAIRN_LOG(kWarn, "etcdserver") << "a peer refused this member: it was removed from the cluster";
  {
    std::lock_guard<std::mutex> l(mu_);
    inbox_wake_ = true;
  }
  cv_.notify_one();
}

void Server::ApplyMemberEntry(uint64_t index, const cairnpb::InternalRequest& r) {
  rocksdb::WriteBatch wb;
  if (r.has_member_attrs()) {
    const auto& m = r.member_attrs();
    membership_->SetAttributes(m.id(), m.name(), Urls(m.client_urls()), &wb);
  } else {
    const auto& m = r.member_update();
    membership_->SetPeerUrls(m.id(), Urls(m.peer_urls()), &wb);
    if (transport_ && m.id() != member_id_ && membership_->Get(m.id())) {
      transport_->AddPeer(m.id(), Urls(m.peer_urls()));
    }
  }
  backend_->Write(&wb);
  kv_->Apply(index, cairnpb::InternalRequest());
}

void Server::InstallSnapshot(const std::string& path) {
  kv_->BeginInstall();
  absl::Status st = storage::InstallSnapshotFile(backend_.get(), path);
  CAIRN_CHECK(st.ok()) << "installing snapshot " << path << ": " << st;
  kv_->ReloadAfterInstall();
  watch_hub_->ResetAfterInstall();
  membership_->Load();
  lessor_->Restore(kv_->Leases());
  applied_ = std::max(applied_.load(), kv_->applied_index());
  if (transport_) {
    for (const auto& m : membership_->Members()) {
      if (m.id() != member_id_) transport_->AddPeer(m.id(), Urls(m.peer_urls()));
    }
  }
  CAIRN_LOG(kInfo, "etcdserver") << "installed snapshot: applied index " << kv_->applied_index()
                                 << ", revision " << kv_->View().revision;
}

void Server::OnBecameLeader() {
  // Only the leader runs lease expiry: restart every timer at its checkpointed remaining TTL (or
  // its full TTL), in apply order so no grant applied meanwhile is lost.
  {
    std::lock_guard<std::mutex> l(apply_mu_);
    ApplyJob job;
    job.callback = [this] { lessor_->Restore(kv_->Leases()); };
    apply_queue_.push_back(std::move(job));
  }
  apply_cv_.notify_one();
}

void Server::ReadPoolLoop() {
  while (true) {
    std::function<void()> f;
    {
      std::unique_lock<std::mutex> l(read_mu_);
      read_cv_.wait(l, [&] { return read_stopping_ || !read_ready_.empty(); });
      if (read_ready_.empty()) return;
      f = std::move(read_ready_.front());
      read_ready_.pop_front();
    }
    f();
  }
}

// ---------------------------------------------------------------------------------------------
// Stop

void Server::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ && !raft_thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  lease_cv_.notify_all();
  // The admin thread runs what is queued (each task fails fast now) and exits; it may use the
  // transport, so it goes before it.
  {
    std::lock_guard<std::mutex> l(admin_mu_);
    admin_stopping_ = true;
  }
  admin_cv_.notify_all();
  if (admin_thread_.joinable()) admin_thread_.join();
  if (lease_timer_.joinable()) lease_timer_.join();
  if (raft_thread_.joinable()) raft_thread_.join();
  transport_.reset();
  {
    std::lock_guard<std::mutex> l(apply_mu_);
    apply_stopping_ = true;
  }
  apply_cv_.notify_all();
  if (applier_.joinable()) applier_.join();
  FailAll(MakeError(ErrorKind::kStopped));
  {
    std::lock_guard<std::mutex> l(read_mu_);
    for (auto& [index, d] : reads_waiting_apply_) {
      read_ready_.push_back([d = std::move(d)] { d(MakeError(ErrorKind::kStopped)); });
    }
    reads_waiting_apply_.clear();
    read_stopping_ = true;
  }
  read_cv_.notify_all();
  for (auto& t : read_pool_) t.join();
  read_pool_.clear();
  std::vector<StatusDone> reads;
  {
    std::lock_guard<std::mutex> l(mu_);
    reads.swap(inbox_reads_);
    for (auto& t : inbox_transfers_) reads.push_back(std::move(t.done));
    inbox_transfers_.clear();
  }
  for (auto& d : reads) d(MakeError(ErrorKind::kStopped));
  // bench/load/compare.py reads this line for entries per WAL fsync.
  CAIRN_LOG(kInfo, "etcdserver") << "stopped: applied " << entries_.load() << " entries; wrote "
                                 << wal_entries_.load() << " WAL entries in " << fsyncs_.load()
                                 << " WAL fsyncs";
}

void Server::RunAdmin(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> l(admin_mu_);
    if (!admin_stopping_) {
      admin_queue_.push_back(std::move(task));
      admin_cv_.notify_one();
      return;
    }
  }
  task();
}

void Server::AdminLoop() {
  std::unique_lock<std::mutex> l(admin_mu_);
  while (true) {
    admin_cv_.wait(l, [this] { return admin_stopping_ || !admin_queue_.empty(); });
    if (admin_queue_.empty()) return;  // stopping, nothing left
    std::function<void()> task = std::move(admin_queue_.front());
    admin_queue_.pop_front();
    l.unlock();
    task();
    l.lock();
  }
}

void Server::AddWaiter(uint64_t id, Waiter w) {
  std::lock_guard<std::mutex> g(wait_mu_);
  w.deadline_ms = NowMs() + RequestTimeoutMs();
  waiter_deadlines_.emplace_back(w.deadline_ms, id);
  waiters_[id] = std::move(w);
}

std::optional<Server::Waiter> Server::TakeWaiter(uint64_t id) {
  std::lock_guard<std::mutex> g(wait_mu_);
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return std::nullopt;
  Waiter w = std::move(it->second);
  waiters_.erase(it);
  return w;
}

void Server::FailAll(const absl::Status& status) {
  std::map<uint64_t, Waiter> waiters;
  {
    std::lock_guard<std::mutex> g(wait_mu_);
    waiters.swap(waiters_);
    waiter_deadlines_.clear();
  }
  for (auto& [id, w] : waiters) {
    if (w.done) w.done(ErrorResult(status));
    if (w.member_done) w.member_done(status);
  }
}

// ---------------------------------------------------------------------------------------------
// Leases

void Server::GrantLease(int64_t id, int64_t ttl_seconds, Done done) {
  if (ttl_seconds > lease::kMaxLeaseTtlSeconds) {
    done(ErrorResult(MakeError(ErrorKind::kLeaseTTLTooLarge)));
    return;
  }
  ttl_seconds = std::max(ttl_seconds, lessor_->min_ttl_seconds());
  if (id == 0) {
    // etcd picks a positive 63-bit id; a collision is caught at apply (kLeaseExist).
    thread_local std::mt19937_64 rng(std::random_device{}());
    do {
      id = static_cast<int64_t>(rng() & 0x7fffffffffffffffULL);
    } while (id == 0 || lessor_->Get(id).has_value());
  }
  cairnpb::InternalRequest r;
  r.mutable_lease_grant()->set_id(id);
  r.mutable_lease_grant()->set_ttl(ttl_seconds);
  Propose(std::move(r), std::move(done));
}

absl::StatusOr<int64_t> Server::RenewLocal(int64_t id) {
  bool checkpointed = false;
  auto ttl = lessor_->Renew(id, &checkpointed);
  if (ttl.ok() && checkpointed) {
    // The lease runs on a full TTL again: forget the checkpointed remaining TTL (etcd does too).
    cairnpb::InternalRequest r;
    auto* cp = r.mutable_lease_checkpoint()->add_checkpoints();
    cp->set_id(id);
    cp->set_remaining_ttl(0);
    Propose(std::move(r), [](mvcc::ApplyResult) {});
  }
  return ttl;
}

template <typename T>
absl::StatusOr<T> Server::CallLeader(const std::function<absl::StatusOr<T>()>& local,
                                     const std::function<absl::StatusOr<T>(uint64_t)>& remote,
                                     const std::function<bool(const absl::Status&)>& final_error,
                                     ErrorKind on_timeout) {
  const int64_t deadline = NowMs() + LeaderWaitMs();
  absl::Status last = MakeError(ErrorKind::kNoLeader);
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return MakeError(ErrorKind::kStopped);
    }
    uint64_t leader = leader_.load();
    if (leader == member_id_) return local();
    if (leader != 0 && transport_) {
      absl::StatusOr<T> r = remote(leader);
      if (r.ok() || final_error(r.status())) return r;
      last = r.status();
    }
    if (NowMs() >= deadline) {
      return base::IsError(last, ErrorKind::kNoLeader) ? last : MakeError(on_timeout);
    }
    std::unique_lock<std::mutex> l(mu_);
    if (stopping_) return MakeError(ErrorKind::kStopped);
    // Woken by Stop; otherwise re-check the leader after a short wait.
    lease_cv_.wait_for(l, std::chrono::milliseconds(config_.heartbeat_interval_ms));
  }
}

absl::StatusOr<int64_t> Server::RenewLease(int64_t id) {
  if (is_learner()) return MakeError(ErrorKind::kNotSupportedForLearner);
  // As etcd: a follower forwards to the leader and, while the leader is unknown or unreachable
  // (an election), retries until a leader answers or the bound passes, so a keepalive sent during
  // a leader change still renews.
  return CallLeader<int64_t>(
      [&] { return RenewLocal(id); },
      [&](uint64_t leader) { return transport_->LeaseRenew(leader, id); },
      [](const absl::Status& st) { return base::IsError(st, ErrorKind::kLeaseNotFound); },
      ErrorKind::kTimeout);
}

etcdserverpb::LeaseTimeToLiveResponse Server::TimeToLiveLocal(
    const etcdserverpb::LeaseTimeToLiveRequest& req) {
  etcdserverpb::LeaseTimeToLiveResponse resp;
  mvcc::ReadView view = kv_->View();
  resp.set_id(req.id());
  auto info = lessor_->Get(req.id());
  resp.mutable_header()->set_revision(view.revision);
  FillHeader(resp.mutable_header());
  if (!info) {
    resp.set_ttl(-1);  // etcd answers an unknown lease with TTL -1, not an error
    return resp;
  }
  resp.set_ttl(std::max<int64_t>(0, info->remaining_ms / 1000));
  resp.set_grantedttl(info->ttl_seconds);
  if (req.keys()) {
    for (auto& k : kv_->LeaseKeys(view, req.id())) resp.add_keys(std::move(k));
  }
  return resp;
}

absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> Server::LeaseTimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& request) {
  if (is_learner()) return MakeError(ErrorKind::kNotSupportedForLearner);
  uint64_t leader = leader_.load();
  if (leader == member_id_) return TimeToLiveLocal(request);
  if (leader == 0 || !transport_) return MakeError(ErrorKind::kNoLeader);
  auto resp = transport_->LeaseTimeToLive(leader, request);
  if (resp.ok()) FillHeader(resp->mutable_header());
  return resp;
}

void Server::LeaseLoop() {
  // Expired leases are revoked through the log at most kLeaseRevokeBatch per tick (etcd limits
  // revokes to 1000/s so a mass expiry cannot flood the log).
  constexpr int64_t kLeaseTickMs = 500;
  constexpr size_t kLeaseRevokeBatch = 500;
  constexpr size_t kLeaseCheckpointBatch = 1000;
  auto next_checkpoint = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(config_.lease_checkpoint_interval_ms);
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    lease_cv_.wait_for(l, std::chrono::milliseconds(kLeaseTickMs));
    if (stopping_) return;
    l.unlock();
    PublishAttributes();
    if (is_leader()) {
      for (int64_t id : lessor_->Expired(kLeaseRevokeBatch)) {
        cairnpb::InternalRequest r;
        r.mutable_lease_revoke()->set_id(id);
        Propose(std::move(r), [this, id](mvcc::ApplyResult res) {
          if (!res.status.ok() && !base::IsError(res.status, ErrorKind::kLeaseNotFound)) {
            lessor_->RevokeFailed(id);
          }
        });
      }
      if (config_.lease_checkpoint_interval_ms > 0 &&
          std::chrono::steady_clock::now() >= next_checkpoint) {
        next_checkpoint = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(config_.lease_checkpoint_interval_ms);
        auto remaining = lessor_->RemainingForCheckpoint();
        for (size_t i = 0; i < remaining.size(); i += kLeaseCheckpointBatch) {
          cairnpb::InternalRequest r;
          for (size_t j = i; j < std::min(remaining.size(), i + kLeaseCheckpointBatch); ++j) {
            auto* cp = r.mutable_lease_checkpoint()->add_checkpoints();
            cp->set_id(remaining[j].first);
            cp->set_remaining_ttl(remaining[j].second);
          }
          Propose(std::move(r), [](mvcc::ApplyResult) {});
        }
      }
    }
    l.lock();
  }
}

// ---------------------------------------------------------------------------------------------
// Membership

void Server::PublishAttributes() {
  // Each member publishes its name and client URLs through the log once a leader is known (etcd
  // does the same), so MemberList on every member shows them.
  if (leader_.load() == 0 || attributes_inflight_.load()) return;
  if (!membership_->Get(member_id_) || AttributesPublished()) return;
  cairnpb::InternalRequest r;
  auto* m = r.mutable_member_attrs();
  m->set_id(member_id_);
  m->set_name(config_.name);
  for (const auto& u : config_.advertise_client_urls) m->add_client_urls(u);
  attributes_inflight_ = true;
  ProposeInternal(std::move(r), [this](mvcc::ApplyResult) { attributes_inflight_ = false; });
}

bool Server::AttributesPublished() const {
  auto me = membership_->Get(member_id_);
  return me && me->name() == config_.name &&
         SameUrlSet(Urls(me->client_urls()), config_.advertise_client_urls);
}

void Server::ProposeConfChange(raft::ConfChange cc, MemberDone done) {
  uint64_t id = NextRequestId();
  cairnpb::InternalRequest ctx;
  if (!cc.context.empty()) CAIRN_CHECK(ctx.ParseFromString(cc.context));
  ctx.set_id(id);
  ctx.set_proposer(member_id_);
  cc.context = ctx.SerializeAsString();
  std::unique_lock<std::mutex> l(mu_);
  if (stopping_) {
    l.unlock();
    done(MakeError(ErrorKind::kStopped));
    return;
  }
  AddWaiter(id, Waiter{nullptr, std::move(done), 0});
  inbox_conf_changes_.push_back(PendingConfChange{std::move(cc), id});
  l.unlock();
  cv_.notify_one();
}

void Server::AddMember(const std::vector<std::string>& peer_urls, bool learner, MemberDone done) {
  if (peer_urls.empty() || !std::all_of(peer_urls.begin(), peer_urls.end(), ValidPeerUrl)) {
    done(MakeError(ErrorKind::kMemberBadURLs));
    return;
  }
  if (!transport_) {
    done(absl::FailedPreconditionError(
        "etcdserver: this member has no peer listener (start it with --listen-peer-urls)"));
    return;
  }
  if (membership_->FindByPeerUrls(peer_urls) != 0) {
    done(MakeError(ErrorKind::kPeerURLExist));
    return;
  }
  // etcd derives a new member's id from its peer URLs, the cluster token and the time.
  uint64_t id = ComputeMemberId(
      peer_urls, absl::StrCat(config_.initial_cluster_token,
                              std::chrono::system_clock::now().time_since_epoch().count()));
  if (membership_->Get(id) || membership_->IsRemoved(id)) {
    done(MakeError(ErrorKind::kMemberExist));
    return;
  }
  if (absl::Status st = MayAddMember(learner); !st.ok()) {
    done(st);
    return;
  }
  cairnpb::InternalRequest ctx;
  auto* m = ctx.mutable_member_change();
  m->set_id(id);
  for (const auto& u : peer_urls) m->add_peer_urls(u);
  m->set_is_learner(learner);
  ProposeConfChange(raft::ConfChange{learner ? raft::ConfChangeType::kAddLearnerNode
                                             : raft::ConfChangeType::kAddNode,
                                     id, ctx.SerializeAsString()},
                    std::move(done));
}

void Server::RemoveMember(uint64_t id, MemberDone done) {
  if (!membership_->Get(id)) {
    done(MakeError(ErrorKind::kMemberNotFound));
    return;
  }
  if (absl::Status st = MayRemoveMember(id); !st.ok()) {
    done(st);
    return;
  }
  ProposeConfChange(raft::ConfChange{raft::ConfChangeType::kRemoveNode, id, ""}, std::move(done));
}

void Server::PromoteMember(uint64_t id, MemberDone done) {
  auto m = membership_->Get(id);
  if (!m) {
    done(MakeError(ErrorKind::kMemberNotFound));
    return;
  }
  if (!m->is_learner()) {
    done(MakeError(ErrorKind::kMemberNotLearner));
    return;
  }
  if (!is_leader()) {
    // Only the leader knows how far the learner is: forward to it (as etcd), blocking for the
    // round trip (bounded by the transport's forward deadline).
    uint64_t leader = leader_.load();
    if (leader == 0 || !transport_) {
      done(MakeError(ErrorKind::kNoLeader));
      return;
    }
    absl::Status st = transport_->MemberPromote(leader, id);
    if (!st.ok()) {
      done(st);
      return;
    }
    auto promoted = membership_->Get(id);
    cairnpb::Member out = promoted ? *promoted : *m;
    out.set_is_learner(false);
    done(out);
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    uint64_t leader_match = progress_match_.count(member_id_) ? progress_match_[member_id_] : 0;
    uint64_t learner_match = progress_match_.count(id) ? progress_match_[id] : 0;
    if (static_cast<double>(learner_match) <
        static_cast<double>(leader_match) * kLearnerReadyFraction) {
      done(MakeError(ErrorKind::kLearnerNotReady));
      return;
    }
  }
  if (absl::Status st = MayPromoteMember(); !st.ok()) {
    done(st);
    return;
  }
  cairnpb::InternalRequest ctx;
  *ctx.mutable_member_change() = *m;
  ctx.mutable_member_change()->set_is_learner(false);
  ProposeConfChange(raft::ConfChange{raft::ConfChangeType::kAddNode, id, ctx.SerializeAsString()},
                    std::move(done));
}

void Server::UpdateMember(uint64_t id, const std::vector<std::string>& peer_urls, MemberDone done) {
  if (peer_urls.empty() || !std::all_of(peer_urls.begin(), peer_urls.end(), ValidPeerUrl)) {
    done(MakeError(ErrorKind::kMemberBadURLs));
    return;
  }
  if (!membership_->Get(id)) {
    done(MakeError(ErrorKind::kMemberNotFound));
    return;
  }
  uint64_t other = membership_->FindByPeerUrls(peer_urls);
  if (other != 0 && other != id) {
    done(MakeError(ErrorKind::kPeerURLExist));
    return;
  }
  cairnpb::InternalRequest r;
  auto* m = r.mutable_member_update();
  m->set_id(id);
  for (const auto& u : peer_urls) m->add_peer_urls(u);
  Propose(std::move(r), [this, id, done = std::move(done)](mvcc::ApplyResult res) {
    if (!res.status.ok()) {
      done(res.status);
      return;
    }
    auto stored = membership_->Get(id);
    if (!stored) {
      done(MakeError(ErrorKind::kMemberNotFound));
      return;
    }
    done(*stored);
  });
}

void Server::MoveLeader(uint64_t target, StatusDone done) {
  auto m = membership_->Get(target);
  if (!m || m->is_learner()) {
    done(MakeError(ErrorKind::kBadLeaderTransferee));
    return;
  }
  std::unique_lock<std::mutex> l(mu_);
  if (stopping_) {
    l.unlock();
    done(MakeError(ErrorKind::kStopped));
    return;
  }
  inbox_transfers_.push_back(Transfer{target, std::move(done), NowMs() + RequestTimeoutMs()});
  l.unlock();
  cv_.notify_one();
}

// ---------------------------------------------------------------------------------------------
// transport::Handler

void Server::OnRaftMessage(raft::Message message) {
  int64_t now = NowMs();
  {
    std::lock_guard<std::mutex> l(mu_);
    PeerContact& contact = peer_contact_[message.from];
    if (contact.last_ms == 0 || now - contact.last_ms > config_.election_timeout_ms) {
      contact.since_ms = now;
    }
    contact.last_ms = now;
    if (inbox_messages_.size() >= kMaxInboxMessages) return;  // raft retransmits
    inbox_messages_.push_back(std::move(message));
  }
  cv_.notify_one();
}

void Server::OnSnapshot(raft::Message message, std::string path) {
  {
    std::lock_guard<std::mutex> l(mu_);
    inbox_snapshots_.emplace_back(std::move(message), std::move(path));
    inbox_wake_ = true;
  }
  cv_.notify_one();
}

void Server::OnUnreachable(uint64_t to) {
  {
    std::lock_guard<std::mutex> l(mu_);
    peer_contact_.erase(to);
    inbox_unreachable_.push_back(to);
    inbox_wake_ = true;
  }
  cv_.notify_one();
}

void Server::OnSnapshotSent(uint64_t to, bool ok) {
  {
    std::lock_guard<std::mutex> l(mu_);
    inbox_snapshot_status_.emplace_back(to, ok);
    inbox_wake_ = true;
  }
  cv_.notify_one();
}

absl::Status Server::WriteSnapshot(const std::function<bool(std::string_view)>& sink) {
  mvcc::ReadView view = kv_->View();
  return storage::ExportSnapshot(backend_.get(), view.snapshot.get(), sink);
}

absl::StatusOr<int64_t> Server::OnLeaseRenew(int64_t id) {
  if (!is_leader()) return MakeError(ErrorKind::kNotLeader);
  return RenewLocal(id);
}

absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> Server::OnLeaseTimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& request) {
  if (!is_leader()) return MakeError(ErrorKind::kNotLeader);
  return TimeToLiveLocal(request);
}

absl::Status Server::OnMemberPromote(uint64_t id) {
  if (!is_leader()) return MakeError(ErrorKind::kNotLeader);
  std::promise<absl::Status> result;
  PromoteMember(id, [&result](absl::StatusOr<cairnpb::Member> m) { result.set_value(m.status()); });
  return result.get_future().get();
}

cairnpb::MembersResponse Server::OnMembers() {
  cairnpb::MembersResponse resp;
  resp.set_cluster_id(cluster_id_.load());
  resp.set_leader(leader_.load());
  for (auto& m : membership_->Members()) *resp.add_members() = std::move(m);
  for (uint64_t id : ActiveMembersLocal()) resp.add_active(id);
  return resp;
}

std::set<uint64_t> Server::ActiveMembersLocal() {
  const int64_t now = NowMs();
  std::set<uint64_t> active{member_id_};
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [id, contact] : peer_contact_) {
    if (now - contact.last_ms <= config_.election_timeout_ms &&
        now - contact.since_ms >= kHealthIntervalMs) {
      active.insert(id);
    }
  }
  return active;
}

absl::StatusOr<std::set<uint64_t>> Server::ActiveMembers() {
  // Only the leader hears from every member (followers do not talk to each other), so its view
  // decides. A leader this member cannot reach is no active quorum it could count on.
  using Active = std::set<uint64_t>;
  return CallLeader<Active>([&] { return absl::StatusOr<Active>(ActiveMembersLocal()); },
                            [&](uint64_t leader) -> absl::StatusOr<Active> {
                              auto resp = transport_->Members(leader);
                              if (!resp.ok()) return resp.status();
                              if (resp->leader() != leader)
                                return MakeError(ErrorKind::kLeaderChanged);
                              return Active(resp->active().begin(), resp->active().end());
                            },
                            [](const absl::Status&) { return false; }, ErrorKind::kUnhealthy);
}

namespace {

// Voting members and how many of them have started (published their name), as etcd counts them.
struct VoterCount {
  std::vector<uint64_t> ids;
  int started = 0;
};

VoterCount CountVoters(const std::vector<cairnpb::Member>& members, uint64_t except) {
  VoterCount c;
  for (const auto& m : members) {
    if (m.is_learner() || m.id() == except) continue;
    c.ids.push_back(m.id());
    if (!m.name().empty()) ++c.started;
  }
  return c;
}

int Quorum(int voters) { return voters / 2 + 1; }

}  // namespace

absl::Status Server::MayAddMember(bool learner) {
  if (!config_.strict_reconfig_check) return absl::OkStatus();
  VoterCount v = CountVoters(membership_->Members(), 0);
  if (!learner) {
    // The new voter has not started yet: the started ones must be a quorum of the grown cluster
    // (a lone started member may still add a second one, to recover a one-member cluster).
    int members = static_cast<int>(v.ids.size()) + 1;
    if (!(v.started == 1 && members == 2) && v.started < Quorum(members)) {
      return MakeError(ErrorKind::kNotEnoughStartedMembers);
    }
  }
  auto active = ActiveMembers();
  if (!active.ok()) return active.status();
  for (uint64_t id : v.ids) {
    if (!active->count(id)) return MakeError(ErrorKind::kUnhealthy);
  }
  return absl::OkStatus();
}

absl::Status Server::MayRemoveMember(uint64_t id) {
  if (!config_.strict_reconfig_check) return absl::OkStatus();
  std::vector<cairnpb::Member> members = membership_->Members();
  auto it = std::find_if(members.begin(), members.end(),
                         [id](const cairnpb::Member& m) { return m.id() == id; });
  if (it == members.end() || it->is_learner()) return absl::OkStatus();  // no quorum at stake
  VoterCount rest = CountVoters(members, id);
  if (rest.started < Quorum(static_cast<int>(rest.ids.size()))) {
    return MakeError(ErrorKind::kNotEnoughStartedMembers);
  }
  auto active = ActiveMembers();
  if (!active.ok()) return active.status();
  // Removing a member that is down cannot cost the active quorum anything.
  if (id != member_id_ && !active->count(id)) return absl::OkStatus();
  int active_rest = 0;
  for (uint64_t v : rest.ids) active_rest += active->count(v) ? 1 : 0;
  if (active_rest < Quorum(static_cast<int>(rest.ids.size()))) {
    return MakeError(ErrorKind::kUnhealthy);
  }
  return absl::OkStatus();
}

absl::Status Server::MayPromoteMember() {
  if (!config_.strict_reconfig_check) return absl::OkStatus();
  // The learner has started (it is caught up); with it, the started voters must be a quorum.
  VoterCount v = CountVoters(membership_->Members(), 0);
  int members = static_cast<int>(v.ids.size()) + 1;
  int started = v.started + 1;
  if (!(started == 1 && members == 2) && started < Quorum(members)) {
    return MakeError(ErrorKind::kNotEnoughStartedMembers);
  }
  return absl::OkStatus();
}

}  // namespace cairn::etcdserver
