// RaftDriver: the member's raft thread (docs/cluster.md, docs/threading.md).
//
//   any thread: Propose / ProposeConfChange / ReadIndex / TransferLeader / Step / ... -> inbox
//   raft thread: drains the inbox; RawNode.Propose (a follower forwards to the leader); ticks;
//     Ready: WAL append + one fsync per Ready, messages to peers, committed entries -> applier;
//     ReadIndex states -> ReadWaits; raft snapshots (WAL compaction) every snapshot_count entries
//
// It owns the inbox, proposal batching, parking requests while there is no leader (bounded by
// leader_wait_ms, then "no leader"), ReadIndex with retries, conf-change re-proposals, leadership
// transfers, Ready handling, the WAL and raft snapshots. Request waiters live in the WaitRegistry:
// the driver registers them with the inbox entry (atomically with the stop check) and fails them
// on raft errors and at their deadline; the applier answers them when their entry applies.
//
// Thread contract: the inbox methods and the accessors are thread-safe and never block on the
// raft thread. Hooks run on the raft thread and must not block. Everything else is owned by the
// raft thread after Start().
//
// Stepping (the whole-member simulation, tests/sim/member_sim.h): instead of Start(), a caller
// may call StartStepped() and then RunOnce() from one thread of its own, which then is the raft
// thread. RunOnce() is one iteration of the thread's loop without the wait: the production loop
// is exactly `wait for work or the next tick; RunOnce's body`. With a stepped Applier (see
// Applier::RunQueued), installing a received snapshot runs the applier's queue on this thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/base/clock.h"
#include "server/base/env.h"
#include "server/etcdserver/applier.h"
#include "server/etcdserver/membership.h"
#include "server/etcdserver/read_waits.h"
#include "server/etcdserver/server_metrics.h"
#include "server/etcdserver/wait_registry.h"
#include "server/raft/raw_node.h"
#include "server/raft/storage.h"
#include "server/storage/backend.h"
#include "server/transport/transport.h"
#include "server/wal/wal.h"

namespace cairn::etcdserver {

class RaftDriver {
 public:
  using StatusDone = std::function<void(absl::Status)>;

  // What bootstrap recovered or created: the WAL, the raft log and the node over it.
  struct Durable {
    std::unique_ptr<wal::Wal> wal;
    std::unique_ptr<raft::MemoryStorage> storage;
    std::unique_ptr<raft::RawNode> node;
    uint64_t snapshot_index = 0;   // the WAL's last snapshot marker
    raft::ConfState applied_conf;  // as of snapshot_index
  };
  struct Deps {
    uint64_t member_id = 0;
    // Raft log entries kept behind a raft snapshot, so a slightly slow follower catches up from
    // the log rather than by a snapshot (etcd keeps 5,000 too; the simulation keeps fewer).
    uint64_t snapshot_catch_up_entries = 5000;
    int64_t heartbeat_interval_ms = 100;
    int64_t election_timeout_ms = 1000;
    int64_t request_timeout_ms = 7000;
    int64_t leader_wait_ms = 3000;
    uint64_t snapshot_count = 100000;
    // A raft snapshot is also taken once this many bytes of entries were committed since the
    // last one, and the log keeps at most snapshot_catch_up_bytes behind it: the log in memory
    // (and replayed at a restart) stays bounded however large the entries (docs/limits.md).
    uint64_t snapshot_log_bytes = 64ull << 20;
    uint64_t snapshot_catch_up_bytes = 32ull << 20;
    base::Clock* clock = base::Clock::Real();
    base::Env* env = base::Env::Default();  // where received snapshot files are removed
    storage::Backend* backend = nullptr;    // synced before a raft snapshot
    Membership* membership = nullptr;
    Applier* applier = nullptr;
    WaitRegistry* waits = nullptr;
    ReadWaits* reads = nullptr;
    // The leader changed (`leader` may be 0); `became_leader` when this member now leads.
    std::function<void(uint64_t leader, bool became_leader)> on_leader_change;
    // A peer refused this member as removed, and its own pending removal was answered.
    std::function<void()> on_removed;
    // Where WAL fsyncs, failed proposals and heartbeat round trips are recorded; nullptr: a
    // registry of the driver's own (the simulation).
    ServerMetrics* metrics = nullptr;
  };

  // Where the raft thread sends messages to peers (never blocks; see transport::Transport::Send).
  using Sender = std::function<void(std::vector<raft::Message>)>;

  // Bootstrap helpers (Server::Open, the simulation). RecoverDurable reopens the WAL in `wal_dir`
  // and loads the log after its last snapshot marker; CreateDurable creates a new WAL holding
  // `initial` (the bootstrap conf-change entries, committed at term 1; may be empty) durably.
  static absl::StatusOr<Durable> RecoverDurable(base::Env* env, const std::string& wal_dir,
                                                wal::WalOptions options = {});
  static absl::StatusOr<Durable> CreateDurable(base::Env* env, const std::string& wal_dir,
                                               const std::vector<raft::Entry>& initial,
                                               wal::WalOptions options = {});
  // Creates the RawNode over `durable`'s storage with `config` (storage and applied are set here:
  // every entry after the WAL's snapshot marker is replayed to the applier, which skips those the
  // store already holds, and the applied configuration is rebuilt from the conf changes among
  // them).
  static absl::Status CreateNode(raft::Config config, Durable* durable);

  RaftDriver(Deps deps, Durable durable);
  ~RaftDriver();
  RaftDriver(const RaftDriver&) = delete;
  RaftDriver& operator=(const RaftDriver&) = delete;

  // The peer transport (none: a member without peers). Called at most once, before Start().
  void AttachTransport(transport::Transport* transport);
  // Likewise, any message sink (the simulation's network).
  void AttachSender(Sender send);
  void Start();
  // ---- stepping (see the header comment) ----
  // Start() without the thread: the caller's thread becomes the raft thread.
  void StartStepped();
  // One iteration of the raft thread: drains the inbox, ticks if a tick is due at the clock's
  // now, handles every Ready, finishes transfers, takes a raft snapshot if due. Never waits
  // (except for the applier's install of a received snapshot). False once stopping.
  bool RunOnce();
  // Refuses new inbox work ("server stopped") and wakes the raft thread. Idempotent.
  void RequestStop();
  // RequestStop, then joins the raft thread; requests it still held fail with "server stopped".
  void Join();

  // ---- inbox ----
  // Registers `w` for request `id` and queues its serialized entry. On error (stopped, too many
  // requests) nothing is queued and `w` is untouched, for the caller to fail.
  absl::Status Propose(uint64_t id, std::string data, Waiter& w);
  // Likewise for a conf change (re-proposed until applied or timed out).
  absl::Status ProposeConfChange(uint64_t id, raft::ConfChange cc, Waiter& w);
  // A linearizable read barrier: `done(OK)` once the read index is applied (on a read-pool
  // thread); errors: no leader, timed out, stopped.
  void ReadIndex(StatusDone done);
  // The read index a linearizable read may use without the raft thread, or 0: the commit index
  // while this member leads and is the only voter (docs/raft.md, "A lone voter's reads").
  uint64_t LocalReadIndex() const { return local_read_index_.load(); }
  // Transfers leadership to `target` (this member must lead): `done` once it leads, or with
  // not leader / timed out / stopped.
  void TransferLeader(uint64_t target, StatusDone done);
  // From the transport.
  void Step(raft::Message message);
  void StepSnapshot(raft::Message message, std::string path);
  void ReportUnreachable(uint64_t to);
  void ReportSnapshot(uint64_t to, bool ok);
  // A peer refused this member as removed from the cluster.
  void ReportRemovedByPeer();
  // From the applier: conf changes applied (index, change) and the applied index.
  void OnApplied(std::vector<std::pair<uint64_t, raft::ConfChange>> confs, uint64_t applied);

  // ---- state (thread-safe) ----
  uint64_t term() const { return term_.load(); }
  uint64_t leader() const { return leader_.load(); }
  uint64_t last_index() const { return last_index_.load(); }
  // The last entry handed to the applier (what it must reach to have applied all it knows).
  uint64_t committed_index() const { return committed_index_.load(); }
  uint64_t wal_entries() const { return wal_entries_.load(); }
  uint64_t fsyncs() const { return fsyncs_.load(); }
  // Group-commit waits so far (Drain), and how many times one handed other work over while it
  // held its proposals back.
  uint64_t lingers() const { return lingers_.load(); }
  uint64_t linger_holds() const { return linger_holds_.load(); }
  uint64_t snapshots() const { return snapshots_.load(); }
  // Bytes of entry data in the raft log in memory (as of the raft thread's last iteration).
  uint64_t log_bytes() const { return log_bytes_.load(); }
  // Leader only (else empty): each member's match index, refreshed every tick.
  std::map<uint64_t, uint64_t> ProgressMatch() const;

 private:
  struct Proposal {
    uint64_t request_id;
    std::string data;  // the serialized InternalRequest
  };
  struct PendingConfChange {
    raft::ConfChange cc;
    uint64_t request_id;
    int64_t retry_ms = 0;            // propose (again) at this time
    int64_t leader_deadline_ms = 0;  // set while no leader is known
  };
  struct Transfer {
    uint64_t target;
    StatusDone done;
    int64_t deadline_ms;
  };
  struct InFlightRead {
    std::vector<StatusDone> dones;
    int64_t deadline_ms;
    int64_t retry_ms;
    int64_t leader_deadline_ms = 0;  // set while parked for want of a leader
  };
  struct ParkedProposal {
    Proposal proposal;
    int64_t leader_deadline_ms;
  };
  // One drain of the inbox.
  struct Inbox {
    std::vector<Proposal> proposals;
    std::vector<raft::Message> messages;
    // A follower's proposals (MsgProp), apart: a leader's group commit takes them as its own.
    std::vector<raft::Message> forwarded;
    size_t forwarded_entries = 0;
    std::vector<std::pair<raft::Message, std::string>> snapshots;
    std::vector<StatusDone> reads;
    std::vector<PendingConfChange> conf_changes;
    std::vector<Transfer> transfers;
    std::vector<uint64_t> unreachable;
    std::vector<std::pair<uint64_t, bool>> snapshot_status;
    std::vector<std::pair<uint64_t, raft::ConfChange>> applied_confs;
    uint64_t applied_index = 0;
  };

  int64_t NowMs() const { return deps_.clock->NowMs(); }
  bool HasLeader() const;
  bool IsLeader() const { return leader_.load() == deps_.member_id; }
  // Start() and StartStepped(): the first tick, and a lone voter's campaign.
  void Prepare();
  // Raft thread.
  void Loop();
  // Moves the inbox to *in, first waiting for work or the next tick if `wait`; false once
  // stopping.
  bool Drain(Inbox* in, bool wait);
  // The loop's body after Drain.
  void Iterate(Inbox& in);
  void Process(Inbox& in);
  void Tick(int64_t now);
  void ProposeBatch(std::vector<Proposal> batch, int64_t leader_deadline_ms);
  void FailProposal(uint64_t request_id, const absl::Status& st);
  void RetryParked();
  void ProposeConfChanges();
  bool CompleteOwnRemoval(const PendingConfChange& pc);
  void IssueRead(InFlightRead r);
  void ExpireReads(int64_t now);
  void StartTransfers(std::vector<Transfer>& transfers);
  void FinishTransfers(int64_t now, bool timeouts);
  void HandleReady(raft::Ready& rd);
  // Stores LocalReadIndex() from the raft state; before anything of a Ready can be seen.
  void PublishLocalReadIndex();
  void InstallReceivedSnapshot(const raft::Snapshot& snapshot);
  void SendEarly(raft::Ready& rd);
  void MaybeSnapshot();
  void FailAllHeld();
  bool InboxReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || inbox_wake_ || !inbox_.proposals.empty() || !inbox_.forwarded.empty() ||
           !inbox_.messages.empty() || !inbox_.reads.empty();
  }
  // Group commit under load (docs/raft.md, "Group commit"): when the last cycle took at least
  // kLingerMinCycle proposals (its own and those followers forwarded) and at least
  // kLingerMinPending requests wait for their apply, Drain waits for more proposals before the
  // next cycle: up to kLingerMicros in all, until kLingerProposals wait, and only while each
  // kLingerGapMicros brings at least one more. Other work arriving meanwhile (a peer's
  // acknowledgement, a read, the applier's progress) does not wait: Drain hands it over at once
  // and holds the proposals back for the rest of the linger.
  static constexpr size_t kLingerMinCycle = 8;
  static constexpr size_t kLingerMinPending = 64;
  static constexpr size_t kLingerProposals = 1024;
  static constexpr int64_t kLingerMicros = 6000;
  static constexpr int64_t kLingerGapMicros = 1000;
  // True when other work interrupted it: the proposals stay in the inbox, the linger goes on in
  // the next Drain.
  bool Linger() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t InboxProposals() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return inbox_.proposals.size() + inbox_.forwarded_entries;
  }
  bool LingerStarts() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return last_cycle_proposals_ >= kLingerMinCycle &&
           deps_.waits->size() + inbox_.forwarded_entries >= kLingerMinPending;
  }
  bool OtherWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return inbox_wake_ || !inbox_.messages.empty() || !inbox_.reads.empty();
  }
  bool LingerOver() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || OtherWork() || InboxProposals() >= kLingerProposals;
  }

  const Deps deps_;
  std::unique_ptr<ServerMetrics> own_metrics_;  // when deps_.metrics is nullptr
  ServerMetrics* const metrics_;
  HeartbeatRtt rtt_;
  Sender send_;           // empty: no peers
  bool stepped_ = false;  // StartStepped(): the applier is stepped on this thread too

  std::atomic<uint64_t> term_{0};
  std::atomic<uint64_t> leader_{0};
  std::atomic<uint64_t> last_index_{0};
  std::atomic<uint64_t> committed_index_{0};
  std::atomic<uint64_t> local_read_index_{0};  // LocalReadIndex(); PublishLocalReadIndex
  std::atomic<uint64_t> wal_entries_{0};
  std::atomic<uint64_t> fsyncs_{0};
  std::atomic<uint64_t> lingers_{0};  // Drain's group-commit waits
  std::atomic<uint64_t> linger_holds_{0};
  size_t last_cycle_proposals_ = 0;  // raft thread: proposals of the last Iterate
  // Raft thread: the proposals in the inbox are held back by a linger that goes on until then.
  bool linger_held_ = false;
  int64_t linger_deadline_ms_ = 0;
  std::atomic<uint64_t> snapshots_{0};
  std::atomic<uint64_t> log_bytes_{0};
  std::atomic<bool> removed_by_peer_{false};

  // ---- the inbox (any thread -> raft thread) ----
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Inbox inbox_ ABSL_GUARDED_BY(mu_);
  bool inbox_wake_ ABSL_GUARDED_BY(mu_) = false;
  std::map<uint64_t, uint64_t> progress_match_ ABSL_GUARDED_BY(mu_);

  // ---- raft thread ----
  std::unique_ptr<wal::Wal> wal_;
  std::unique_ptr<raft::MemoryStorage> storage_;
  std::unique_ptr<raft::RawNode> node_;
  raft::ConfState applied_conf_;       // as of applied_conf_index_
  uint64_t applied_conf_index_ = 0;    // entries up to here reported by the applier
  uint64_t snapshot_index_ = 0;        // last raft snapshot (WAL marker)
  uint64_t bytes_since_snapshot_ = 0;  // entry data committed since the last raft snapshot
  std::map<uint64_t, std::string> received_snapshots_;  // snapshot index -> file
  std::map<std::string, InFlightRead> reads_;           // by read-index context
  uint64_t read_seq_ = 0;
  std::vector<InFlightRead> parked_reads_;
  std::deque<ParkedProposal> parked_proposals_;  // in deadline order
  std::vector<PendingConfChange> pending_ccs_;
  std::vector<Transfer> transfers_;
  int64_t next_tick_ms_ = 0;

  std::thread thread_;
};

}  // namespace cairn::etcdserver
