// Server: one cairn member of a Raft cluster (docs/cluster.md is the design), a thin composition
// of components with one owner thread each (docs/threading.md):
//
//   Propose(request) -> RaftDriver inbox -> raft thread: RawNode.Propose (a follower forwards to
//     the leader) -> Ready: WAL append + one fsync per Ready, send messages, committed entries ->
//   Applier thread: each committed entry in order, one RocksDB batch per entry (applied index
//     included), publish the read view, notify watchers and the lessor, answer the WaitRegistry.
//   LeaseDriver (lease timer), MembershipAdmin (admin thread), Forwarder (calls to the leader).
//
// Server itself bootstraps the member (identity, WAL, raft log), wires the components, answers
// the transport's handlers by delegating, and stops everything in order. A single member is the
// one-voter cluster of the same code.
//
// Thread contract: every public method is thread-safe. Completion callbacks (Done, ReadDone) run
// on the applier thread, the raft thread or a read-pool thread and must not block. Stop() ends
// every pending call (with an error if it did not complete) and joins the threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairnpb/internal.pb.h"
#include "cairnpb/peer.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/auth/jwt.h"
#include "server/base/clock.h"
#include "server/base/env.h"
#include "server/base/errors.h"
#include "server/etcdserver/alarms.h"
#include "server/etcdserver/applier.h"
#include "server/etcdserver/compactor.h"
#include "server/etcdserver/forwarder.h"
#include "server/etcdserver/lease_driver.h"
#include "server/etcdserver/maintenance.h"
#include "server/etcdserver/membership.h"
#include "server/etcdserver/membership_admin.h"
#include "server/etcdserver/raft_driver.h"
#include "server/etcdserver/read_waits.h"
#include "server/etcdserver/server_metrics.h"
#include "server/etcdserver/wait_registry.h"
#include "server/lease/lessor.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/watch_hub.h"
#include "server/raft/raw_node.h"
#include "server/storage/backend.h"
#include "server/transport/transport.h"
#include "server/wal/wal.h"

namespace cairn::etcdserver {

struct ServerConfig {
  std::string name = "default";
  std::string data_dir;  // default: "<name>.cairn"
  std::vector<std::string> advertise_client_urls;
  std::vector<std::string> initial_advertise_peer_urls{"http://localhost:2380"};
  // Peer listener. Empty: none, allowed only for a single-member cluster (docs/cluster.md).
  std::vector<std::string> listen_peer_urls;
  // --initial-cluster as name -> peer URLs; empty means {name: initial_advertise_peer_urls}.
  std::vector<std::pair<std::string, std::vector<std::string>>> initial_cluster;
  bool initial_cluster_state_existing = false;
  std::string initial_cluster_token = "etcd-cluster";
  // etcd's --auto-compaction-mode / --auto-compaction-retention (compactor.h); retention 0
  // disables: milliseconds (periodic) or revisions (revision).
  CompactionMode auto_compaction_mode = CompactionMode::kPeriodic;
  int64_t auto_compaction_retention = 0;
  // Revision mode: time between compactions (--auto-compaction-interval; etcd's fixed 5 min).
  int64_t auto_compaction_interval_ms = 5 * 60 * 1000;
  // Limits (docs/limits.md).
  // etcd's --quota-backend-bytes: over it this member raises NOSPACE (2 GiB, etcd's default).
  int64_t quota_backend_bytes = int64_t{2} << 30;
  int64_t max_request_bytes = 1572864;  // etcd's --max-request-bytes default, 1.5 MiB
  int max_txn_ops = 128;                // etcd's --max-txn-ops default
  // Proposals accepted but not yet applied; beyond it writes fail with "too many requests".
  size_t max_pending_proposals = 5000;
  // Committed entries handed to the applier at once at most.
  size_t max_batch_entries = 1024;
  // etcd's --experimental-watch-progress-notify-interval (10m); <= 0 disables.
  int64_t watch_progress_notify_interval_ms = 10 * 60 * 1000;
  // Raft timing (etcd's --heartbeat-interval, --election-timeout); they also set the minimum
  // lease TTL as etcd does: ceil(1.5 election timeouts).
  int64_t heartbeat_interval_ms = 100;
  int64_t election_timeout_ms = 1000;
  // etcd's --snapshot-count: applied entries between raft snapshots (WAL compaction).
  uint64_t snapshot_count = 100000;
  // etcd 3.5's --experimental-snapshot-catchup-entries: entries kept in the log behind a raft
  // snapshot for slow followers; a follower further behind gets the snapshot.
  uint64_t snapshot_catch_up_entries = 5000;
  // Cairn's own: a raft snapshot once this many bytes of entries were committed since the last,
  // and at most this many bytes of entries kept behind it (docs/limits.md).
  uint64_t snapshot_log_bytes = 64ull << 20;
  uint64_t snapshot_catch_up_bytes = 32ull << 20;
  // Remaining-TTL checkpoints (etcd's --experimental-lease-checkpoint-interval); <= 0 disables.
  int64_t lease_checkpoint_interval_ms = 5 * 60 * 1000;
  // Auth (docs/auth.md): etcd's --auth-token-ttl (simple tokens) and --bcrypt-cost.
  int64_t auth_token_ttl_seconds = 300;
  int bcrypt_cost = 10;
  // etcd's --auth-token: simple, or jwt with its keys (read at Open; a bad key fails Open).
  auth::TokenSpec auth_token;
  // Called once, from a member thread, when this member learns it was removed from the cluster
  // (main shuts the process down). Unset: the removal is only logged.
  std::function<void()> on_removed;
  // etcd's --strict-reconfig-check (default on): refuse a membership change that the started or
  // active members could not carry (Server::MayAddMember and friends; docs/cluster.md).
  bool strict_reconfig_check = true;
  // TLS of the client URLs (--cert-file, ...) and of the peer URLs (--peer-cert-file, ...), used
  // by https:// URLs (docs/security.md). auto_tls_dir defaults to
  // <data_dir>/fixtures/{client,peer}.
  transport::TlsConfig client_tls;
  transport::TlsConfig peer_tls;
  // The member's file system (WAL, snapshot files) and time source; not owned, must outlive the
  // Server. RocksDB does its own I/O. Tests and simulations pass their own (docs/threading.md).
  base::Env* env = base::Env::Default();
  base::Clock* clock = base::Clock::Real();
  // Seed of raft's election jitter (a base::Rng); 0 draws a fresh one at every start. A simulation
  // passes its own so that a run replays.
  uint64_t random_seed = 0;
};

class Server : private transport::Handler {
 public:
  using Done = std::function<void(mvcc::ApplyResult)>;
  using StatusDone = std::function<void(absl::Status)>;

  static absl::StatusOr<std::unique_ptr<Server>> Open(const ServerConfig& config);
  ~Server() override;

  // Proposes a write. `done` runs once the entry is applied on this member, or with an error:
  // request too large, too many requests, no leader, timed out, stopped.
  void Propose(cairnpb::InternalRequest request, Done done);
  // A linearizable read barrier: `done(OK)` once this member has applied everything committed
  // before the call (ReadIndex); errors: no leader, timed out, stopped, not supported for learner.
  // `done` runs on a read-pool thread, where the caller may read the store; on the caller's
  // thread when this member is the lone voter's leader and has applied the read index.
  void ReadBarrier(StatusDone done);

  // ---- reads of this member's published state (thread-safe) ----
  // A Range / read-only Txn on the local view, header filled (serializable; for a linearizable
  // read call ReadBarrier first). Errors: etcd's (compacted, future revision).
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& r) const;
  absl::StatusOr<etcdserverpb::TxnResponse> ReadTxn(const etcdserverpb::TxnRequest& r) const;
  // The store's current revision.
  int64_t revision() const { return kv_->View().revision; }
  int64_t db_size_bytes() const { return backend_->SizeBytes(); }
  std::vector<int64_t> LeaseIds() const { return lessor_->Ids(); }
  // `done(true)` once physical compaction has reached `revision` (false: the store closed).
  void OnCompacted(int64_t revision, std::function<void(bool)> done) {
    kv_->OnCompacted(revision, std::move(done));
  }

  // The store and the watch hub, for the watch service (to move behind the member's API too).
  mvcc::KvStore* kv() { return kv_.get(); }
  mvcc::WatchHub* watch_hub() { return watch_hub_.get(); }
  lease::Lessor* lessor() { return lessor_.get(); }
  auth::AuthStore* auth() { return auth_.get(); }
  storage::Backend* backend() { return backend_.get(); }
  const ServerConfig& config() const { return config_; }
  uint64_t cluster_id() const { return cluster_id_.load(); }
  uint64_t member_id() const { return member_id_; }
  uint64_t term() const { return raft_->term(); }
  uint64_t leader() const { return raft_->leader(); }
  bool is_leader() const { return leader() == member_id_; }
  bool is_learner() const;
  uint64_t raft_index() const { return raft_->last_index(); }
  uint64_t applied_index() const { return applier_->applied_index(); }
  // Fills cluster_id, member_id and raft_term; revision is the caller's.
  void FillHeader(etcdserverpb::ResponseHeader* header) const;

  // ---- leases ----
  // LeaseGrant: validates and adjusts the TTL as etcd does, picks an ID when `id` is 0, proposes.
  void GrantLease(int64_t id, int64_t ttl_seconds, Done done);
  // KeepAlive: the granted TTL, or kLeaseNotFound; forwarded to the leader from a follower.
  // Never blocks: `done` runs on the caller's thread on the leader, later on a transport or
  // forwarder thread on a follower (Forwarder).
  void RenewLease(int64_t id, std::function<void(absl::StatusOr<int64_t>)> done);
  // LeaseTimeToLive, answered by the leader (forwarded from a follower). Likewise.
  void LeaseTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request,
      std::function<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>)> done);

  // ---- membership ----
  std::vector<cairnpb::Member> Members() const { return membership_->Members(); }
  using MemberDone = std::function<void(absl::StatusOr<cairnpb::Member>)>;
  void AddMember(const std::vector<std::string>& peer_urls, bool learner, MemberDone done);
  void RemoveMember(uint64_t id, MemberDone done);
  void UpdateMember(uint64_t id, const std::vector<std::string>& peer_urls, MemberDone done);
  void PromoteMember(uint64_t id, MemberDone done);
  // Transfers leadership to `target` (this member must be the leader). `done` runs once `target`
  // leads, or with an error (not leader, bad transferee, timed out).
  void MoveLeader(uint64_t target, StatusDone done);

  // True once this member's name and client URLs are in the applied membership (etcd serves
  // clients only from then on, so MemberList always shows them).
  bool AttributesPublished() const;

  // Peer port actually bound (0 when there is no peer listener); for logs and tests.
  std::vector<int> peer_ports() const;

  // Runs `task` on this member's admin thread, in order. For membership changes: they may wait
  // for a leader, ask it for its view or forward to it, which must not hold a gRPC callback
  // thread. Tasks still queued at Stop run then and fail fast ("server stopped"); after Stop a
  // task runs on the caller's thread.
  void RunAdmin(std::function<void()> task);

  // ---- maintenance (server_maintenance.cc; docs/maintenance.md) ----
  // The cluster's alarms (every member's), as applied on this member.
  std::vector<etcdserverpb::AlarmMember> Alarms() const { return alarms_->List(); }
  // For the request gate, on every write (Put, a Txn with writes, LeaseGrant): true when it must
  // be refused with "database space exceeded": NOSPACE is raised, or this member's backend is
  // over --quota-backend-bytes (then NOSPACE is proposed for this member, as etcd does).
  bool SpaceExceeded();
  // For the request gate: true while any member has the CORRUPT alarm (writes are refused with
  // "etcdserver: corrupt cluster" until it is disarmed). Lock-free.
  bool Corrupted() const { return alarms_->HasAny(etcdserverpb::CORRUPT); }
  // Proposes an alarm change (ACTIVATE / DEACTIVATE); GET is answered from the local list.
  void Alarm(const etcdserverpb::AlarmRequest& request,
             std::function<void(absl::StatusOr<etcdserverpb::AlarmResponse>)> done);

  // Hash, HashKV and Defragment run on the maintenance thread (maintenance.h has the
  // definitions); `done` runs there. Errors: server stopped; HashKV: compacted, future revision.
  void Hash(std::function<void(absl::StatusOr<uint32_t>)> done);
  void HashKV(int64_t revision, std::function<void(absl::StatusOr<HashKvResult>)> done);
  // The corruption check's question to member `peer`, over the peer transport (cairnpb.Peer
  // HashKV, outside client auth): its HashKV at `revision`. `done` runs once, on a transport
  // thread or the caller's, and must not block. Errors: Unavailable (unknown or unreachable peer,
  // stopped), DeadlineExceeded after `timeout_ms`, the peer's (future revision, compacted).
  void PeerHashKV(uint64_t peer, int64_t revision, int64_t timeout_ms,
                  std::function<void(absl::StatusOr<etcdserverpb::HashKVResponse>)> done);
  void Defragment(StatusDone done);
  // Starts / stops the auto-compactor (when configured); from Open and Stop.
  void StartAutoCompaction();
  void StopAutoCompaction();
  // The published view (for the Snapshot stream; hold it while reading at its snapshot).
  mvcc::ReadView View() const { return kv_->View(); }

  // Stops the member: pending calls end with "server stopped". Idempotent.
  void Stop();

  // Write-path counters: entries applied, entries written to the WAL and WAL fsyncs made
  // (wal_entries / fsyncs = entries per fsync, the group commit factor). Logged at Stop.
  struct Stats {
    uint64_t entries = 0;
    uint64_t wal_entries = 0;
    uint64_t fsyncs = 0;
    uint64_t raft_snapshots = 0;
    uint64_t raft_log_bytes = 0;
    uint64_t group_commit_waits = 0;  // docs/raft.md, "Group commit"
    uint64_t group_commit_holds = 0;  // waits that let other work pass their proposals
  };
  Stats stats() const {
    Stats s;
    s.entries = applier_->entries_applied();
    s.wal_entries = raft_->wal_entries();
    s.fsyncs = raft_->fsyncs();
    s.raft_snapshots = raft_->snapshots();
    s.raft_log_bytes = raft_->log_bytes();
    s.group_commit_waits = raft_->lingers();
    s.group_commit_holds = raft_->linger_holds();
    return s;
  }

  // This member's metrics (etcd's names; docs/metrics.md), for /metrics (api/metrics_text.h).
  base::MetricsRegistry& metrics() { return metrics_.registry; }

 private:
  explicit Server(const ServerConfig& config)
      : config_(config), clock_(config.clock), env_(config.env) {}
  // Recovers (restart) or creates (first start) the member's identity, WAL and raft log.
  absl::Status Bootstrap(RaftDriver::Durable* durable);
  absl::Status BootstrapNew(std::vector<raft::Entry>* entries);
  absl::Status BootstrapExisting();
  // Propose without the learner check (a learner publishes its own attributes).
  void ProposeInternal(cairnpb::InternalRequest request, Done done);
  // Creates the waits, applier and raft driver over what Bootstrap recovered.
  void CreateCore(RaftDriver::Durable durable);
  // The applier's hooks: peers in the transport, applied conf changes to the raft thread.
  Applier::Hooks ApplierHooks();
  // Creates the forwarder, lease driver and membership admin (before the transport starts).
  void CreateComponents();
  absl::Status StartTransport();
  // The peer TLS settings with auto-tls's directory filled in.
  transport::TlsConfig PeerTls() const;
  void OnLeaderChange(uint64_t leader, bool became_leader);
  void PublishAttributes();
  void ProposeConfChange(raft::ConfChange cc, MemberDone done);
  uint64_t NextRequestId() { return next_request_id_.fetch_add(1); }
  int64_t RequestTimeoutMs() const { return 5000 + 2 * config_.election_timeout_ms; }
  // How long a request that meets this member without a leader (an election, a leadership
  // transfer) waits for one before it fails with "no leader" (docs/limits.md).
  int64_t LeaderWaitMs() const { return 2 * config_.election_timeout_ms + 1000; }

  // transport::Handler
  void OnRaftMessage(raft::Message message) override;
  void OnSnapshot(raft::Message message, std::string path) override;
  void OnUnreachable(uint64_t to) override;
  void OnSnapshotSent(uint64_t to, bool ok) override;
  absl::Status WriteSnapshot(const std::function<bool(std::string_view)>& sink) override;
  void OnLeaseRenew(int64_t id, std::function<void(absl::StatusOr<int64_t>)> done) override;
  void OnLeaseTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request,
      std::function<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>)> done) override;
  cairnpb::MembersResponse OnMembers() override;
  void OnMemberPromote(uint64_t id, std::function<void(absl::Status)> done) override;
  void OnHashKV(int64_t revision,
                std::function<void(absl::StatusOr<etcdserverpb::HashKVResponse>)> done) override;
  bool IsRemovedMember(uint64_t id) override;
  void OnRemovedFromCluster() override;
  // Logs that this member was removed and calls config_.on_removed (main shuts down), once.
  void ShutDownRemoved();
  // Registers the gauges read from the components at scrape time (server_metrics.cc).
  void RegisterMetrics();

  ServerConfig config_;
  base::Clock* const clock_;
  ServerMetrics metrics_;  // first: outlives every component that records into it
  std::unique_ptr<storage::Backend> backend_;
  std::unique_ptr<mvcc::KvStore> kv_;
  std::unique_ptr<mvcc::WatchHub> watch_hub_;
  std::unique_ptr<lease::Lessor> lessor_;
  std::unique_ptr<Membership> membership_;
  std::unique_ptr<etcdserver::Alarms> alarms_;
  std::atomic<bool> nospace_proposing_{false};
  // SpaceExceeded measures the backend at most every kQuotaCheckIntervalMs (every write asks).
  std::atomic<int64_t> quota_checked_ms_{-1};
  std::atomic<int64_t> quota_size_bytes_{0};
  std::unique_ptr<auth::AuthStore> auth_;
  std::atomic<uint64_t> cluster_id_{0};
  uint64_t member_id_ = 0;
  std::atomic<uint64_t> next_request_id_{0};
  // Peers known at start (before the membership is applied): id -> peer URLs.
  std::vector<cairnpb::Member> initial_peers_;
  base::Env* const env_;

  // The components (docs/threading.md), in creation order; Stop() ends them in its own order.
  std::unique_ptr<WaitRegistry> waits_;   // pending client requests
  std::unique_ptr<ReadWaits> reads_;      // linearizable reads waiting for the applier
  std::unique_ptr<Applier> applier_;      // the applier thread
  std::unique_ptr<RaftDriver> raft_;      // the raft thread
  std::unique_ptr<Forwarder> forwarder_;  // calls to the leader
  std::unique_ptr<LeaseDriver> lease_driver_;
  std::unique_ptr<MembershipAdmin> admin_;
  std::unique_ptr<transport::Transport> transport_;

  std::atomic<bool> stopped_{false};
  // Last: destroyed first, joined in Stop before the store goes away.
  MaintenanceWorker maintenance_;
  std::unique_ptr<Compactor> compactor_;  // with --auto-compaction-retention
  std::atomic<bool> attributes_inflight_{false};
  std::atomic<bool> shutdown_raised_{false};
};

}  // namespace cairn::etcdserver
