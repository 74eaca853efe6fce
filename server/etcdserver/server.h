// Server: one cairn member of a Raft cluster (docs/cluster.md is the design).
//
//   Propose(request) -> inbox -> raft thread: RawNode.Propose (a follower forwards to the leader)
//     -> Ready: WAL append + one fsync per Ready, send messages, committed entries -> applier
//   applier thread: apply each committed entry in order (one RocksDB batch per entry, applied
//     index included), publish the read view, notify watchers and the lessor, complete waiters.
//
// A single member is the one-voter cluster of the same code.
//
// Thread contract: every public method is thread-safe. Completion callbacks (Done, ReadDone) run
// on the applier thread, the raft thread or a read-pool thread and must not block. Stop() ends
// every pending call (with an error if it did not complete) and joins the threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "cairnpb/internal.pb.h"
#include "cairnpb/peer.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/base/errors.h"
#include "server/etcdserver/membership.h"
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
  // Limits (docs/limits.md).
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
  // Remaining-TTL checkpoints (etcd's --experimental-lease-checkpoint-interval); <= 0 disables.
  int64_t lease_checkpoint_interval_ms = 5 * 60 * 1000;
  // etcd's --strict-reconfig-check (default on): refuse a membership change that the started or
  // active members could not carry (Server::MayAddMember and friends; docs/cluster.md).
  bool strict_reconfig_check = true;
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
  // `done` runs on a read-pool thread, where the caller may read the store.
  void ReadBarrier(StatusDone done);

  mvcc::KvStore* kv() { return kv_.get(); }
  mvcc::WatchHub* watch_hub() { return watch_hub_.get(); }
  lease::Lessor* lessor() { return lessor_.get(); }
  storage::Backend* backend() { return backend_.get(); }
  const ServerConfig& config() const { return config_; }
  uint64_t cluster_id() const { return cluster_id_.load(); }
  uint64_t member_id() const { return member_id_; }
  uint64_t term() const { return term_.load(); }
  uint64_t leader() const { return leader_.load(); }
  bool is_leader() const { return leader() == member_id_; }
  bool is_learner() const;
  uint64_t raft_index() const { return last_index_.load(); }
  uint64_t applied_index() const { return applied_.load(); }
  // Fills cluster_id, member_id and raft_term; revision is the caller's.
  void FillHeader(etcdserverpb::ResponseHeader* header) const;

  // ---- leases ----
  // LeaseGrant: validates and adjusts the TTL as etcd does, picks an ID when `id` is 0, proposes.
  void GrantLease(int64_t id, int64_t ttl_seconds, Done done);
  // KeepAlive: the granted TTL, or kLeaseNotFound; forwarded to the leader from a follower.
  // Blocks for a round trip on a follower.
  absl::StatusOr<int64_t> RenewLease(int64_t id);
  // LeaseTimeToLive, answered by the leader (forwarded from a follower). Blocks likewise.
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> LeaseTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request);

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

  // Stops the member: pending calls end with "server stopped". Idempotent.
  void Stop();

  // Write-path counters: entries applied, entries written to the WAL and WAL fsyncs made
  // (wal_entries / fsyncs = entries per fsync, the group commit factor). Logged at Stop.
  struct Stats {
    uint64_t entries = 0;
    uint64_t wal_entries = 0;
    uint64_t fsyncs = 0;
  };
  Stats stats() const { return {entries_.load(), wal_entries_.load(), fsyncs_.load()}; }

 private:
  explicit Server(const ServerConfig& config) : config_(config) {}
  absl::Status Bootstrap();
  // Propose without the learner check (a learner publishes its own attributes).
  void ProposeInternal(cairnpb::InternalRequest request, Done done);
  void RaftLoop();
  void ApplierLoop();
  void LeaseLoop();
  void AdminLoop();
  void ReadPoolLoop();
  void HandleReady(raft::Ready& rd);
  void MaybeSnapshot();
  void ApplyEntries(std::vector<raft::Entry>& entries);
  void ApplyConfChangeEntry(const raft::Entry& e, bool skip);
  void ApplyMemberEntry(uint64_t index, const cairnpb::InternalRequest& r);
  void InstallSnapshot(const std::string& path);
  void OnBecameLeader();
  void PublishAttributes();
  void ProposeConfChange(raft::ConfChange cc, MemberDone done);
  uint64_t NextRequestId() { return next_request_id_.fetch_add(1); }
  void FailAll(const absl::Status& status);
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
  absl::StatusOr<int64_t> OnLeaseRenew(int64_t id) override;
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> OnLeaseTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request) override;
  cairnpb::MembersResponse OnMembers() override;
  absl::Status OnMemberPromote(uint64_t id) override;
  bool IsRemovedMember(uint64_t id) override;
  void OnRemovedFromCluster() override;
  // Logs that this member was removed and raises SIGTERM (main shuts down cleanly), once.
  void ShutDownRemoved();

  // --strict-reconfig-check, as etcd: errors "re-configuration failed due to not enough started
  // members" (Unknown, as etcd 3.4) or "unhealthy cluster" (Unavailable). The view of who is active
  // is the leader's (a follower asks it), bounded by LeaderWaitMs without a leader.
  absl::Status MayAddMember(bool learner);
  absl::Status MayRemoveMember(uint64_t id);
  absl::Status MayPromoteMember();
  absl::StatusOr<std::set<uint64_t>> ActiveMembers();
  // This member and the peers it has heard from steadily (no gap longer than an election timeout,
  // never found unreachable) for at least kHealthIntervalMs, up to now: etcd's "connected since"
  // for its health interval.
  std::set<uint64_t> ActiveMembersLocal();

  // Runs `local()` when this member leads, else `remote(leader)`. Without a leader, or while
  // `remote` fails with an error `final_error` does not accept, retries every heartbeat interval
  // for LeaderWaitMs(); then "no leader" if no leader answered at all, else `on_timeout`. "server
  // stopped" once Stop began. Blocks the caller.
  template <typename T>
  absl::StatusOr<T> CallLeader(const std::function<absl::StatusOr<T>()>& local,
                               const std::function<absl::StatusOr<T>(uint64_t)>& remote,
                               const std::function<bool(const absl::Status&)>& final_error,
                               base::ErrorKind on_timeout);

  absl::StatusOr<int64_t> RenewLocal(int64_t id);
  etcdserverpb::LeaseTimeToLiveResponse TimeToLiveLocal(
      const etcdserverpb::LeaseTimeToLiveRequest& request);

  ServerConfig config_;
  std::unique_ptr<storage::Backend> backend_;
  std::unique_ptr<mvcc::KvStore> kv_;
  std::unique_ptr<mvcc::WatchHub> watch_hub_;
  std::unique_ptr<lease::Lessor> lessor_;
  std::unique_ptr<Membership> membership_;
  std::atomic<uint64_t> cluster_id_{0};
  uint64_t member_id_ = 0;
  std::atomic<uint64_t> term_{0};
  std::atomic<uint64_t> leader_{0};
  std::atomic<uint64_t> last_index_{0};
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> next_request_id_{0};
  // Peers known at start (before the membership is applied): id -> peer URLs.
  std::vector<cairnpb::Member> initial_peers_;

  // ---- raft thread state (owned by the raft thread after Open) ----
  wal::Env* env_ = nullptr;
  std::unique_ptr<wal::Wal> wal_;
  std::unique_ptr<raft::MemoryStorage> storage_;
  std::unique_ptr<raft::RawNode> node_;
  std::unique_ptr<transport::Transport> transport_;
  raft::ConfState applied_conf_;     // as of applied_conf_index_
  uint64_t applied_conf_index_ = 0;  // entries up to here reported by the applier
  uint64_t snapshot_index_ = 0;      // last raft snapshot (WAL marker)
  std::map<uint64_t, std::string> received_snapshots_;  // snapshot index -> file

  // ---- inbox (raft thread input), guarded by mu_ ----
  struct Proposal {
    uint64_t request_id;
    std::string data;  // the serialized InternalRequest
  };
  struct PendingConfChange {
    raft::ConfChange cc;
    uint64_t request_id;
    int64_t retry_ms = 0;            // raft thread: propose (again) at this time
    int64_t leader_deadline_ms = 0;  // raft thread: set while no leader is known
  };
  struct Transfer {
    uint64_t target;
    StatusDone done;
    int64_t deadline_ms;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<Proposal> inbox_proposals_;
  std::vector<raft::Message> inbox_messages_;
  std::vector<std::pair<raft::Message, std::string>> inbox_snapshots_;
  std::vector<StatusDone> inbox_reads_;
  std::vector<PendingConfChange> inbox_conf_changes_;
  std::vector<Transfer> inbox_transfers_;
  std::vector<uint64_t> inbox_unreachable_;
  std::vector<std::pair<uint64_t, bool>> inbox_snapshot_status_;
  std::vector<std::pair<uint64_t, raft::ConfChange>> inbox_applied_conf_;  // index, change
  uint64_t inbox_applied_index_ = 0;
  bool inbox_wake_ = false;
  // Leader only: each member's match index, refreshed every tick (for MemberPromote).
  std::map<uint64_t, uint64_t> progress_match_;
  // Raft messages received from each peer: since when without a gap longer than an election
  // timeout, and the last one (NowMs). A peer reported unreachable is dropped until heard again.
  // For ActiveMembersLocal.
  struct PeerContact {
    int64_t since_ms = 0;
    int64_t last_ms = 0;
  };
  std::map<uint64_t, PeerContact> peer_contact_;

  // ---- waiters, guarded by wait_mu_ ----
  struct Waiter {
    Done done;
    MemberDone member_done;
    int64_t deadline_ms = 0;  // set by AddWaiter
  };
  // Registers the waiter of request `id` with the request timeout; removes and returns it.
  void AddWaiter(uint64_t id, Waiter w);
  std::optional<Waiter> TakeWaiter(uint64_t id);
  std::mutex wait_mu_;
  std::map<uint64_t, Waiter> waiters_;
  std::deque<std::pair<int64_t, uint64_t>> waiter_deadlines_;  // (deadline, id), FIFO

  // ---- applier queue, guarded by apply_mu_ ----
  struct ApplyJob {
    std::vector<raft::Entry> entries;
    std::string snapshot_path;       // install this first (non-empty)
    std::function<void()> callback;  // run on the applier thread (after the above)
  };
  std::mutex apply_mu_;
  std::condition_variable apply_cv_;
  std::condition_variable apply_idle_cv_;
  std::deque<ApplyJob> apply_queue_;
  bool applier_busy_ = false;
  bool apply_stopping_ = false;

  // ---- linearizable reads waiting for the applier, guarded by read_mu_ ----
  std::mutex read_mu_;
  std::condition_variable read_cv_;
  std::multimap<uint64_t, StatusDone> reads_waiting_apply_;
  std::deque<std::function<void()>> read_ready_;
  bool read_stopping_ = false;

  std::thread raft_thread_;
  std::thread applier_;
  std::thread lease_timer_;
  std::thread admin_thread_;
  std::mutex admin_mu_;
  std::condition_variable admin_cv_;               // with admin_mu_
  std::deque<std::function<void()>> admin_queue_;  // guarded by admin_mu_
  bool admin_stopping_ = false;                    // guarded by admin_mu_
  std::vector<std::thread> read_pool_;
  std::condition_variable lease_cv_;  // with mu_
  std::atomic<bool> attributes_inflight_{false};
  std::atomic<uint64_t> entries_{0};
  std::atomic<uint64_t> wal_entries_{0};
  std::atomic<uint64_t> fsyncs_{0};
  // A peer refused this member as removed (raft thread completes its own removal, then stops).
  std::atomic<bool> removed_by_peer_{false};
  std::atomic<bool> shutdown_raised_{false};
};

}  // namespace cairn::etcdserver
