#include "server/etcdserver/server.h"

#include <algorithm>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "server/base/check.h"
#include "server/base/encoding.h"
#include "server/base/errors.h"
#include "server/base/logging.h"
#include "server/etcdserver/member_id.h"
#include "server/storage/snapshot.h"

namespace cairn::etcdserver {

using base::ErrorKind;
using base::MakeError;

namespace {

// Read-pool threads running linearizable reads once their index is applied.
constexpr int kReadPoolThreads = 2;

void PutMeta(rocksdb::WriteBatch* wb, storage::Backend* b, const char* name, uint64_t v) {
  std::string value;
  base::PutBE64(&value, v);
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
  // The WAL and snapshot files live in the Env; RocksDB does its own I/O on the real file
  // system, so its parent directory is created there (the same directories for Env::Default).
  std::error_code ec;
  std::filesystem::create_directories(s->config_.data_dir + "/member", ec);
  if (ec) return absl::InternalError("create " + s->config_.data_dir + ": " + ec.message());
  if (absl::Status st = s->env_->CreateDirs(s->config_.data_dir + "/member/snap"); !st.ok()) {
    return absl::InternalError("create " + s->config_.data_dir + ": " + std::string(st.message()));
  }
  auto backend = storage::Backend::Open(s->config_.data_dir + "/member/db", s->env_);
  if (!backend.ok()) return backend.status();
  s->backend_ = std::move(*backend);
  s->backend_->SetCommitHistogram(s->metrics_.backend_commit_seconds);
  absl::Status resumed = storage::ResumePendingInstall(s->backend_.get());
  if (!resumed.ok()) return resumed;
  s->membership_ = std::make_unique<Membership>(s->backend_.get());
  s->membership_->Load();
  s->alarms_ = std::make_unique<etcdserver::Alarms>(s->backend_.get());
  s->alarms_->Load();
  std::unique_ptr<auth::JwtTokens> jwt;
  if (s->config_.auth_token.type == auth::TokenSpec::Type::kJwt) {
    auto made = auth::JwtTokens::Create(s->config_.auth_token, s->clock_,
                                        s->config_.auth_token_ttl_seconds * 1000);
    if (!made.ok()) return made.status();
    jwt = *std::move(made);
  }
  s->auth_ = std::make_unique<auth::AuthStore>(
      s->backend_.get(), s->clock_, s->config_.auth_token_ttl_seconds * 1000, std::move(jwt));
  s->auth_->Load();

  RaftDriver::Durable durable;
  absl::Status boot = s->Bootstrap(&durable);
  if (!boot.ok()) return boot;

  s->kv_ = std::make_unique<mvcc::KvStore>(s->backend_.get());
  s->watch_hub_ = std::make_unique<mvcc::WatchHub>(
      s->kv_.get(), s->config_.watch_progress_notify_interval_ms, s->clock_);
  // etcd: minTTL = (3 * electionTicks / 2) heartbeats, rounded up to whole seconds.
  int64_t ticks = std::max<int64_t>(
      1, s->config_.election_timeout_ms / std::max<int64_t>(1, s->config_.heartbeat_interval_ms));
  int64_t min_ttl_ms = (3 * ticks / 2) * s->config_.heartbeat_interval_ms;
  base::Clock* clock = s->clock_;
  s->lessor_ = std::make_unique<lease::Lessor>([clock] { return clock->NowMs(); },
                                               (min_ttl_ms + 999) / 1000);
  s->lessor_->Restore(s->kv_->Leases());
  // Before the transport starts: its handlers reach these components.
  s->CreateCore(std::move(durable));
  s->CreateComponents();
  absl::Status transport = s->StartTransport();
  if (!transport.ok()) return transport;

  s->RegisterMetrics();
  s->raft_->Start();
  s->applier_->Start();
  s->lease_driver_->Start();
  s->StartAutoCompaction();
  CAIRN_LOG(kInfo, "etcdserver") << "member " << IdToHex(s->member_id_) << " of cluster "
                                 << IdToHex(s->cluster_id_.load())
                                 << " started, applied index=" << s->applier_->applied_index()
                                 << " revision=" << s->kv_->View().revision;
  return s;
}

transport::TlsConfig Server::PeerTls() const {
  transport::TlsConfig tls = config_.peer_tls;
  if (tls.auto_tls_dir.empty()) tls.auto_tls_dir = config_.data_dir + "/fixtures/peer";
  return tls;
}

absl::Status Server::StartTransport() {
  // Peers: the applied membership, plus (on a first start) the members known from the flags or
  // from the cluster we join, so that raft can talk before the membership is applied.
  std::map<uint64_t, std::vector<std::string>> peers;
  for (const auto& m : initial_peers_) peers[m.id()] = Urls(m.peer_urls());
  for (const auto& m : membership_->Members()) peers[m.id()] = Urls(m.peer_urls());
  if (config_.listen_peer_urls.empty()) {
    if (peers.size() > 1) {
      return absl::InvalidArgumentError(
          "--listen-peer-urls is required for a cluster of more than one member");
    }
    return absl::OkStatus();
  }
  transport::TransportOptions options;
  options.env = env_;
  options.tls = PeerTls();
  auto t = transport::Transport::Start(config_.listen_peer_urls, cluster_id_.load(), member_id_,
                                       config_.data_dir + "/member/snap", this, options);
  if (!t.ok()) return t.status();
  transport_ = std::move(*t);
  raft_->AttachTransport(transport_.get());
  lease_driver_->AttachTransport(transport_.get());
  admin_->AttachTransport(transport_.get());
  for (const auto& [id, urls] : peers) {
    if (id != member_id_) transport_->AddPeer(id, urls);
  }
  return absl::OkStatus();
}

absl::Status Server::Bootstrap(RaftDriver::Durable* durable) {
  storage::Backend* b = backend_.get();
  const std::string wal_dir = config_.data_dir + "/member/wal";
  member_id_ = static_cast<uint64_t>(b->ReadMetaInt("member_id", 0));
  if (wal::WalExists(env_, wal_dir)) {
    // Restart: identity and membership come from the data dir; the --initial-* flags are ignored.
    if (member_id_ == 0) return absl::DataLossError("data dir has a WAL but no member id");
    cluster_id_ = static_cast<uint64_t>(b->ReadMetaInt("cluster_id", 0));
    auto recovered = RaftDriver::RecoverDurable(env_, wal_dir);
    if (!recovered.ok()) return recovered.status();
    *durable = std::move(*recovered);
    if (static_cast<uint64_t>(b->ReadMetaInt("applied_index", 0)) < durable->snapshot_index) {
      return absl::DataLossError("the store is behind the WAL's snapshot");
    }
  } else {
    if (b->ReadMetaInt("applied_index", 0) > 0) {
      return absl::DataLossError("data dir has a store but no WAL (" + wal_dir + ")");
    }
    std::vector<raft::Entry> entries;
    absl::Status st =
        config_.initial_cluster_state_existing ? BootstrapExisting() : BootstrapNew(&entries);
    if (!st.ok()) return st;
    rocksdb::WriteBatch wb;
    PutMeta(&wb, b, "member_id", member_id_);
    PutMeta(&wb, b, "cluster_id", cluster_id_.load());
    CAIRN_CHECK(wb.Put(b->cf(storage::Cf::kMeta), "member_name", config_.name).ok());
    b->Write(&wb);
    b->Sync();
    auto created = RaftDriver::CreateDurable(env_, wal_dir, entries);
    if (!created.ok()) return created.status();
    *durable = std::move(*created);
  }
  raft::Config rc;
  rc.id = member_id_;
  rc.heartbeat_tick = 1;
  rc.election_tick = static_cast<int>(config_.election_timeout_ms / config_.heartbeat_interval_ms);
  rc.random_seed = config_.random_seed != 0 ? config_.random_seed
                                            : std::random_device{}() ^ member_id_ ^
                                                  static_cast<uint64_t>(clock_->NowMs());
  absl::Status node = RaftDriver::CreateNode(rc, durable);
  if (!node.ok()) return node;
  next_request_id_ = static_cast<uint64_t>(clock_->WallMs()) << 20;
  return absl::OkStatus();
}

// --initial-cluster-state new: the members of --initial-cluster, each added by a committed conf
// change entry at term 1 (ids and cluster id derived as etcd derives them).
absl::Status Server::BootstrapNew(std::vector<raft::Entry>* entries) {
  std::vector<std::pair<std::string, std::vector<std::string>>> initial = config_.initial_cluster;
  if (initial.empty()) initial.push_back({config_.name, config_.initial_advertise_peer_urls});
  std::vector<cairnpb::Member> members;
  bool found = false;
  for (const auto& [name, urls] : initial) {
    cairnpb::Member m;
    m.set_id(ComputeMemberId(urls, config_.initial_cluster_token));
    m.set_name(name);
    for (const auto& u : urls) m.add_peer_urls(u);
    if (name == config_.name) {
      if (!SameUrlSet(urls, config_.initial_advertise_peer_urls)) {
        return absl::InvalidArgumentError("--initial-cluster has peer URLs for \"" + config_.name +
                                          "\" that differ from --initial-advertise-peer-urls");
      }
      found = true;
      member_id_ = m.id();
    }
    members.push_back(std::move(m));
  }
  if (!found) {
    return absl::InvalidArgumentError("--initial-cluster has no member named \"" + config_.name +
                                      "\"");
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
    e.data = raft::EncodeConfChange(
        raft::ConfChange{raft::ConfChangeType::kAddNode, members[i].id(), ctx.SerializeAsString()});
    entries->push_back(std::move(e));
  }
  cluster_id_ = ComputeClusterId(ids);
  initial_peers_ = members;
  return absl::OkStatus();
}

// --initial-cluster-state existing: the cluster's members (this one added by MemberAdd first),
// fetched from the other members of --initial-cluster.
absl::Status Server::BootstrapExisting() {
  std::vector<std::string> urls;
  for (const auto& [name, u] : config_.initial_cluster) {
    if (name != config_.name) urls.insert(urls.end(), u.begin(), u.end());
  }
  if (urls.empty()) {
    return absl::InvalidArgumentError(
        "--initial-cluster-state existing needs the other members in --initial-cluster");
  }
  auto resp = transport::Transport::FetchMembers(urls, 5000, PeerTls());
  if (!resp.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot fetch the cluster's members from ", urls[0],
                                               ": ", resp.status().message()));
  }
  const auto& mine = config_.initial_advertise_peer_urls;
  for (const auto& m : resp->members()) {
    for (const auto& u : m.peer_urls()) {
      if (std::find(mine.begin(), mine.end(), u) != mine.end()) member_id_ = m.id();
    }
    initial_peers_.push_back(m);
  }
  if (member_id_ == 0) {
    return absl::FailedPreconditionError(
        "this member's --initial-advertise-peer-urls are not in the cluster: add it with "
        "MemberAdd first");
  }
  cluster_id_ = resp->cluster_id();
  return absl::OkStatus();
}

void Server::CreateCore(RaftDriver::Durable durable) {
  waits_ = std::make_unique<WaitRegistry>(config_.max_pending_proposals);
  reads_ = std::make_unique<ReadWaits>(kReadPoolThreads, kv_->applied_index());
  Applier::Deps deps;
  deps.backend = backend_.get();
  deps.kv = kv_.get();
  deps.watch_hub = watch_hub_.get();
  deps.lessor = lessor_.get();
  deps.membership = membership_.get();
  deps.alarms = alarms_.get();
  deps.auth = auth_.get();
  deps.waits = waits_.get();
  deps.reads = reads_.get();
  deps.member_id = member_id_;
  deps.max_batch_entries = config_.max_batch_entries;
  applier_ = std::make_unique<Applier>(deps, ApplierHooks());

  RaftDriver::Deps rd;
  rd.member_id = member_id_;
  rd.heartbeat_interval_ms = config_.heartbeat_interval_ms;
  rd.election_timeout_ms = config_.election_timeout_ms;
  rd.request_timeout_ms = RequestTimeoutMs();
  rd.leader_wait_ms = LeaderWaitMs();
  rd.snapshot_count = config_.snapshot_count;
  rd.snapshot_catch_up_entries = config_.snapshot_catch_up_entries;
  rd.snapshot_log_bytes = config_.snapshot_log_bytes;
  rd.snapshot_catch_up_bytes = config_.snapshot_catch_up_bytes;
  rd.clock = clock_;
  rd.env = env_;
  rd.backend = backend_.get();
  rd.membership = membership_.get();
  rd.applier = applier_.get();
  rd.waits = waits_.get();
  rd.reads = reads_.get();
  rd.metrics = &metrics_;
  rd.on_leader_change = [this](uint64_t leader, bool became_leader) {
    OnLeaderChange(leader, became_leader);
  };
  rd.on_removed = [this] { ShutDownRemoved(); };
  raft_ = std::make_unique<RaftDriver>(std::move(rd), std::move(durable));
}

Server::~Server() { Stop(); }

void Server::CreateComponents() {
  Forwarder::Options fo;
  fo.clock = clock_;
  fo.member_id = member_id_;
  fo.heartbeat_interval_ms = config_.heartbeat_interval_ms;
  fo.leader_wait_ms = LeaderWaitMs();
  fo.leader = [this] { return raft_->leader(); };
  fo.can_forward = !config_.listen_peer_urls.empty();
  forwarder_ = std::make_unique<Forwarder>(std::move(fo));
  LeaseDriver::Deps deps;
  deps.lessor = lessor_.get();
  deps.kv = kv_.get();
  deps.clock = clock_;
  deps.forwarder = forwarder_.get();
  deps.checkpoint_interval_ms = config_.lease_checkpoint_interval_ms;
  deps.propose = [this](cairnpb::InternalRequest r, Done done) {
    Propose(std::move(r), std::move(done));
  };
  deps.is_leader = [this] { return is_leader(); };
  deps.is_learner = [this] { return is_learner(); };
  deps.fill_header = [this](etcdserverpb::ResponseHeader* h) { FillHeader(h); };
  deps.periodic = [this] { PublishAttributes(); };
  deps.wait_applied = [this](std::function<void(absl::Status)> then) {
    reads_->WaitFor(raft_->committed_index(), std::move(then));
  };
  lease_driver_ = std::make_unique<LeaseDriver>(std::move(deps));

  MembershipAdmin::Deps admin;
  admin.membership = membership_.get();
  admin.clock = clock_;
  admin.forwarder = forwarder_.get();
  admin.member_id = member_id_;
  admin.initial_cluster_token = config_.initial_cluster_token;
  admin.strict_reconfig_check = config_.strict_reconfig_check;
  admin.election_timeout_ms = config_.election_timeout_ms;
  admin.leader = [this] { return raft_->leader(); };
  admin.propose_conf_change = [this](raft::ConfChange cc, MemberDone done) {
    ProposeConfChange(std::move(cc), std::move(done));
  };
  admin.propose = [this](cairnpb::InternalRequest r, Done done) {
    Propose(std::move(r), std::move(done));
  };
  admin.progress_match = [this] { return raft_->ProgressMatch(); };
  admin_ = std::make_unique<MembershipAdmin>(std::move(admin));
}

bool Server::is_learner() const { return membership_->IsLearner(member_id_); }

void Server::FillHeader(etcdserverpb::ResponseHeader* header) const {
  header->set_cluster_id(cluster_id_.load());
  header->set_member_id(member_id_);
  header->set_raft_term(raft_->term());
}

absl::StatusOr<etcdserverpb::RangeResponse> Server::Range(
    const etcdserverpb::RangeRequest& r) const {
  auto resp = kv_->Range(kv_->View(), r);
  if (resp.ok()) FillHeader(resp->mutable_header());
  return resp;
}

absl::StatusOr<etcdserverpb::TxnResponse> Server::ReadTxn(const etcdserverpb::TxnRequest& r) const {
  auto resp = kv_->ReadTxn(kv_->View(), r);
  if (resp.ok()) FillHeader(resp->mutable_header());
  return resp;
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
  Waiter w{std::move(done), nullptr};
  absl::Status st = raft_->Propose(id, request.SerializeAsString(), w);
  if (!st.ok()) {
    metrics_.proposals_failed->Inc();
    w.Fail(st);  // outside the driver's lock: the callback may propose again
  }
}

void Server::ReadBarrier(StatusDone done) {
  if (is_learner()) {
    done(MakeError(ErrorKind::kNotSupportedForLearner));
    return;
  }
  // A lone voter's read index is known without raft (docs/raft.md, "A lone voter's reads").
  if (uint64_t index = raft_->LocalReadIndex(); index != 0) {
    if (applier_->applied_index() >= index) return done(absl::OkStatus());
    return reads_->WaitFor(index, std::move(done));
  }
  raft_->ReadIndex(std::move(done));
}

void Server::MoveLeader(uint64_t target, StatusDone done) {
  auto m = membership_->Get(target);
  if (!m || m->is_learner()) {
    done(MakeError(ErrorKind::kBadLeaderTransferee));
    return;
  }
  raft_->TransferLeader(target, std::move(done));
}

void Server::ProposeConfChange(raft::ConfChange cc, MemberDone done) {
  uint64_t id = NextRequestId();
  cairnpb::InternalRequest ctx;
  if (!cc.context.empty()) CAIRN_CHECK(ctx.ParseFromString(cc.context));
  ctx.set_id(id);
  ctx.set_proposer(member_id_);
  cc.context = ctx.SerializeAsString();
  Waiter w{nullptr, std::move(done)};
  absl::Status st = raft_->ProposeConfChange(id, std::move(cc), w);
  if (!st.ok()) w.Fail(st);
}

// ---------------------------------------------------------------------------------------------
// Hooks of the raft driver and the applier

Applier::Hooks Server::ApplierHooks() {
  Applier::Hooks hooks;
  hooks.on_applied = [this](std::vector<std::pair<uint64_t, raft::ConfChange>> confs,
                            uint64_t applied) { raft_->OnApplied(std::move(confs), applied); };
  hooks.on_peer_set = [this](uint64_t id, const std::vector<std::string>& urls) {
    if (transport_) transport_->AddPeer(id, urls);
  };
  hooks.on_peer_removed = [this](uint64_t id) {
    if (transport_) transport_->RemovePeer(id);
  };
  hooks.on_removed = [this] { ShutDownRemoved(); };
  return hooks;
}

void Server::OnLeaderChange(uint64_t leader, bool became_leader) {
  if (leader != 0) metrics_.leader_changes_seen->Inc();
  if (became_leader) {
    // Only the leader runs lease expiry: restart every timer at its checkpointed remaining TTL
    // (or its full TTL), in apply order so no grant applied meanwhile is lost.
    applier_->EnqueueCallback([this] { lessor_->Restore(kv_->Leases()); });
  }
  if (leader != 0) PublishAttributes();
}

void Server::ShutDownRemoved() {
  if (shutdown_raised_.exchange(true)) return;
  CAIRN_LOG(kWarn, "etcdserver")
      << "this member has been permanently removed from the cluster; shutting down";
  if (config_.on_removed) config_.on_removed();
}

// ---------------------------------------------------------------------------------------------
// Stop

void Server::Stop() {
  if (stopped_.exchange(true)) return;
  if (raft_) raft_->RequestStop();  // new requests fail fast from here on
  if (forwarder_) forwarder_->Stop();
  // The admin thread runs what is queued (each task fails fast now) and exits; it may use the
  // transport, so it goes before it.
  if (admin_) admin_->Stop();
  maintenance_.Stop();  // queued hashes and defragments fail fast
  if (lease_driver_) lease_driver_->Stop();
  if (raft_) raft_->Join();
  transport_.reset();
  if (applier_) applier_->Stop();
  if (waits_) {
    for (Waiter& w : waits_->TakeAll()) w.Fail(MakeError(ErrorKind::kStopped));
  }
  if (reads_) reads_->Stop(MakeError(ErrorKind::kStopped));
  // After the waits failed: a compaction the compactor is waiting for has completed by now.
  StopAutoCompaction();
  if (!raft_) return;
  // The one line of a clean stop (docs/operations.md); bench/load/compare.py falls back to it for
  // entries per WAL fsync when /metrics is not served.
  CAIRN_LOG(kInfo, "etcdserver") << "stopped cleanly: applied " << applier_->entries_applied()
                                 << " entries; wrote " << raft_->wal_entries() << " WAL entries in "
                                 << raft_->fsyncs() << " WAL fsyncs (" << raft_->lingers()
                                 << " group-commit waits)";
}

void Server::RunAdmin(std::function<void()> task) { admin_->RunAdmin(std::move(task)); }

// ---------------------------------------------------------------------------------------------
// Leases

void Server::GrantLease(int64_t id, int64_t ttl_seconds, Done done) {
  lease_driver_->Grant(id, ttl_seconds, std::move(done));
}

void Server::RenewLease(int64_t id, std::function<void(absl::StatusOr<int64_t>)> done) {
  lease_driver_->Renew(id, std::move(done));
}

void Server::LeaseTimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& request,
    std::function<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>)> done) {
  lease_driver_->TimeToLive(request, std::move(done));
}

// ---------------------------------------------------------------------------------------------
// Membership

void Server::PublishAttributes() {
  // Each member publishes its name and client URLs through the log once a leader is known (etcd
  // does the same), so MemberList on every member shows them.
  if (raft_->leader() == 0 || attributes_inflight_.load()) return;
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

void Server::AddMember(const std::vector<std::string>& peer_urls, bool learner, MemberDone done) {
  admin_->AddMember(peer_urls, learner, std::move(done));
}

void Server::RemoveMember(uint64_t id, MemberDone done) {
  admin_->RemoveMember(id, std::move(done));
}

void Server::PromoteMember(uint64_t id, MemberDone done) {
  admin_->PromoteMember(id, std::move(done));
}

void Server::UpdateMember(uint64_t id, const std::vector<std::string>& peer_urls, MemberDone done) {
  admin_->UpdateMember(id, peer_urls, std::move(done));
}

// ---------------------------------------------------------------------------------------------
// transport::Handler

void Server::OnRaftMessage(raft::Message message) {
  admin_->NotePeerMessage(message.from);
  raft_->Step(std::move(message));
}

void Server::OnSnapshot(raft::Message message, std::string path) {
  raft_->StepSnapshot(std::move(message), std::move(path));
}

void Server::OnUnreachable(uint64_t to) {
  admin_->NotePeerUnreachable(to);
  raft_->ReportUnreachable(to);
}

void Server::OnSnapshotSent(uint64_t to, bool ok) { raft_->ReportSnapshot(to, ok); }

absl::Status Server::WriteSnapshot(const std::function<bool(std::string_view)>& sink) {
  mvcc::ReadView view = kv_->View();
  return storage::ExportSnapshot(backend_.get(), view.snapshot.get(), sink);
}

void Server::OnLeaseRenew(int64_t id, std::function<void(absl::StatusOr<int64_t>)> done) {
  lease_driver_->OnRenew(id, std::move(done));
}

void Server::OnLeaseTimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& request,
    std::function<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>)> done) {
  lease_driver_->OnTimeToLive(request, std::move(done));
}

void Server::OnMemberPromote(uint64_t id, std::function<void(absl::Status)> done) {
  admin_->OnMemberPromote(id, std::move(done));
}

cairnpb::MembersResponse Server::OnMembers() { return admin_->OnMembers(cluster_id_.load()); }

bool Server::IsRemovedMember(uint64_t id) { return membership_->IsRemoved(id); }

void Server::OnRemovedFromCluster() { raft_->ReportRemovedByPeer(); }

}  // namespace cairn::etcdserver
