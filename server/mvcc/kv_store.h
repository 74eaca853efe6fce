// KvStore: the revisioned key-value store (etcd's mvcc) on the RocksDB layout of docs/keyspace.md.
//
// Thread contract:
//   - Apply(), Publish(), applied_index() are called by the applier thread only.
//   - View(), Range(), ReadTxn() and the accessors are thread-safe. Readers see only published
//     state: Publish() is called after the applied batches are written. Those writes are not
//     synced; the entries are durable in the raft WAL before they are applied, and a restart
//     replays whatever RocksDB lost, so a read never observes a write a crash could take away.
//   - Physical compaction runs on a background thread owned by the store.
// Errors are base::MakeError values (etcd's codes and messages).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/mvcc/range_count_cache.h"
#include "server/storage/backend.h"

namespace cairn::mvcc {

// A consistent, durable view of the store for readers.
struct ReadView {
  std::shared_ptr<const rocksdb::Snapshot> snapshot;
  int64_t revision = 0;
  int64_t compact_revision = -1;  // -1: never compacted
};

// True when every op of `t`, nested txns included, is a Range (etcd serves such a txn locally).
bool IsTxnReadOnly(const etcdserverpb::TxnRequest& t);

// The history record of revision (main, sub) as etcd's layout has it: a kind byte ('p' put, 'd'
// delete) and the serialized KeyValue. Reads `rev` at `ro` and, for a live put (whose value is held
// only in `latest`, docs/keyspace.md "One copy of each value"), `latest` at the same `ro`.
// NotFound: no such record. DataLoss: the records disagree.
absl::Status ReadHistoryRecord(storage::Backend* backend, const rocksdb::ReadOptions& ro,
                               int64_t main, int64_t sub, std::string* record);
// The same for a `rev` value already read into `record`: a live put's marker is replaced by the
// resolved record; any other record is left as it is.
absl::Status ResolveHistoryRecord(storage::Backend* backend, const rocksdb::ReadOptions& ro,
                                  int64_t main, int64_t sub, std::string* record);

// A live lease as persisted (docs/keyspace.md, family `lease`).
struct LeaseRecord {
  int64_t id = 0;
  int64_t ttl_seconds = 0;   // granted TTL
  int64_t remaining_ms = 0;  // last checkpointed remaining TTL; 0 = not checkpointed
};

// What applying one log entry produced.
struct ApplyResult {
  absl::Status status;  // an etcd error; the entry changed nothing but applied_index
  etcdserverpb::PutResponse put;
  etcdserverpb::DeleteRangeResponse delete_range;
  etcdserverpb::TxnResponse txn;
  etcdserverpb::CompactionResponse compaction;
  etcdserverpb::LeaseGrantResponse lease_grant;
  etcdserverpb::LeaseRevokeResponse lease_revoke;
  etcdserverpb::AlarmResponse alarm;  // filled by the applier for an alarm entry
  // Lease changes the entry made, for the lessor's timers.
  std::vector<LeaseRecord> leases_granted;
  std::vector<int64_t> leases_revoked;
  std::vector<LeaseRecord> leases_checkpointed;
  int64_t compact_revision = 0;  // set for a successful compaction (for Compact(physical))
  // The entry's changes in (revision, sub) order, each with prev_kv when the key existed.
  int64_t revision = 0;  // the revision the changes were written at (0: nothing changed)
  std::vector<mvccpb::Event> events;
};

class KvStore {
 public:
  // `backend` must outlive the store.
  explicit KvStore(storage::Backend* backend);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // ---- readers (thread-safe) ----
  ReadView View() const ABSL_LOCKS_EXCLUDED(view_mu_);
  // A Range at `view` (etcd's applier Range: sort, limit, filters, count, keys_only).
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const ReadView& view,
                                                    const etcdserverpb::RangeRequest& r) const;
  // Events with revision in [from, view.revision] (at most about `max_events`, never splitting a
  // revision), in order; *next is set to the first revision not returned. Keys outside
  // [key, range_end) (etcd range semantics) are skipped. Fails with kCompacted if `from` is below
  // the view's compact revision. prev_kv is filled when `with_prev_kv`.
  absl::Status ReadEvents(const ReadView& view, int64_t from, const std::string& key,
                          const std::string& range_end, bool with_prev_kv, size_t max_events,
                          std::vector<mvccpb::Event>* events, int64_t* next) const;
  // A read-only Txn (every op a Range) evaluated at `view`.
  absl::StatusOr<etcdserverpb::TxnResponse> ReadTxn(const ReadView& view,
                                                    const etcdserverpb::TxnRequest& r) const;
  // Calls `done` (on the compactor thread, or at once) when physical compaction has reached
  // `revision`, or with false when the store closes first.
  void OnCompacted(int64_t revision, std::function<void(bool)> done)
      ABSL_LOCKS_EXCLUDED(compact_mu_);

  // Keys attached to `lease_id` at `view`, in key order.
  std::vector<std::string> LeaseKeys(const ReadView& view, int64_t lease_id) const;
  // Every live lease as persisted (for the lessor at start).
  std::vector<LeaseRecord> Leases() const;

  // ---- applier thread ----
  // Applying one committed log entry, as the applier does it:
  //   auto b = kv->Begin(index);             // index > applied_index(), else CHECK-fails
  //   ApplyResult r = kv->Put(*b, put);      // exactly one request method per entry (or none,
  //                                          // for an entry that only moves the applied index)
  //   membership->Add(m, b->batch());          // other families' changes of the same entry
  //   kv->Commit(*b, &r);                    // one unsynced RocksDB batch: all of the above
  //                                          // plus revision and applied_index
  // A request that fails with an etcd error (r.status) writes nothing but the applied index:
  // Commit discards the whole batch then.
  class EntryBatch {
   public:
    ~EntryBatch();
    uint64_t index() const;
    // The batch, for changes to families the store does not own (membership). Written by Commit.
    rocksdb::WriteBatchBase* batch();

   private:
    friend class KvStore;
    class Impl;
    explicit EntryBatch(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };
  std::unique_ptr<EntryBatch> Begin(uint64_t index);
  ApplyResult Put(EntryBatch& b, const etcdserverpb::PutRequest& r);
  ApplyResult DeleteRange(EntryBatch& b, const etcdserverpb::DeleteRangeRequest& r);
  ApplyResult Txn(EntryBatch& b, const etcdserverpb::TxnRequest& r);
  ApplyResult Compact(EntryBatch& b, const etcdserverpb::CompactionRequest& r);
  ApplyResult GrantLease(EntryBatch& b, const etcdserverpb::LeaseGrantRequest& r);
  ApplyResult RevokeLease(EntryBatch& b, const etcdserverpb::LeaseRevokeRequest& r);
  ApplyResult CheckpointLeases(EntryBatch& b, const etcdserverpb::LeaseCheckpointRequest& r);
  void Commit(EntryBatch& b, ApplyResult* result);

  // Grouped entries (docs/keyspace.md, "Atomicity"): a committed entry that is a plain Put or a
  // DeleteRange of one key (no range_end, IsGroupable) may be applied into the store's open group
  // instead of a batch of its own. Consecutive grouped entries become one RocksDB write, with the
  // revision and applied index written once for all of them:
  //   kv->PutGrouped(i, put); kv->DeleteGrouped(i + 1, del); ...; kv->FlushGroup();
  // A later entry of the group reads the earlier ones' writes (the group is an indexed batch). A
  // put that fails (an etcd error) writes nothing but moves the applied index. Begin() and
  // Publish() flush the open group first, so entries of other kinds keep their log order.
  static bool IsGroupable(const etcdserverpb::DeleteRangeRequest& r) {
    return r.range_end().empty();
  }
  ApplyResult PutGrouped(uint64_t index, const etcdserverpb::PutRequest& r);
  ApplyResult DeleteGrouped(uint64_t index, const etcdserverpb::DeleteRangeRequest& r);
  // Writes the open group (if any) as one unsynced RocksDB batch.
  void FlushGroup();
  // Makes everything applied so far visible to readers (flushing the open group first).
  void Publish() ABSL_LOCKS_EXCLUDED(view_mu_);
  uint64_t applied_index() const { return applied_index_; }
  // Pages of paginated ranges whose count came from the previous page (RangeCountCache; any
  // thread).
  uint64_t range_count_hits() const { return range_counts_.hits(); }

  // ---- snapshot install (applier thread; docs/snapshot_format.md) ----
  // The call sequence when a snapshot file has been received:
  //   kv->BeginInstall();
  //   absl::Status s = storage::InstallSnapshotFile(backend, path);
  //   kv->ReloadAfterInstall();   // whatever `s` is
  //   hub->ResetAfterInstall();   // then lessor->Restore(kv->Leases())
  // BeginInstall stops physical compaction: queued compactions are dropped and a running one is
  // interrupted at its next batch boundary; it returns once no compaction write can follow. No
  // compaction runs until ReloadAfterInstall. Readers keep the published view meanwhile.
  void BeginInstall() ABSL_LOCKS_EXCLUDED(compact_mu_);
  // Re-reads from the backend everything the store keeps in memory (revision, compact revision,
  // applied index, finished compact revision, live lease ids), restarts physical compaction
  // towards the compact revision if it is not finished, and publishes a new view (the backend must
  // be synced, as InstallSnapshotFile leaves it). Compaction waiters already satisfied by the new
  // state are completed with true; waiters for a revision above the new compact revision (which
  // the new state will never compact to) with false; the rest wait for the restarted compaction.
  void ReloadAfterInstall() ABSL_LOCKS_EXCLUDED(compact_mu_, view_mu_);

  // Tests: `hook(batches)` runs on the compactor thread after each batch a physical compaction
  // writes (batches: how many this compaction has written so far), outside every store lock.
  // Set it before the compaction starts.
  void SetCompactionBatchHook(std::function<void(int)> hook) {
    compaction_batch_hook_ = std::move(hook);
  }

  // Implementation details (defined in kv_store.cc).
  class Source;
  class TxnWriter;

 private:
  ApplyResult ApplyPut(TxnWriter& w, const etcdserverpb::PutRequest& r);
  // The end of a grouped entry: its revision and events, the applied index, the size bound.
  void EndGrouped(uint64_t index, TxnWriter& w, ApplyResult* res);
  etcdserverpb::DeleteRangeResponse DoDeleteRange(TxnWriter& w,
                                                  const etcdserverpb::DeleteRangeRequest& r);
  absl::Status RunTxn(TxnWriter& w, const etcdserverpb::TxnRequest& t,
                      const std::vector<bool>& path, size_t* pos, etcdserverpb::TxnResponse* out);
  void StartCompaction(int64_t revision) ABSL_LOCKS_EXCLUDED(compact_mu_);
  void CompactorLoop() ABSL_LOCKS_EXCLUDED(compact_mu_);
  // Physically compacts history in (from, to] in batches of kCompactionBatchLimit entries with a
  // pause between them (writes go on meanwhile). Returns false, leaving the work unfinished, when
  // an install interrupts it (install_requested_) or the store closes.
  bool CompactRange(int64_t from, int64_t to) ABSL_LOCKS_EXCLUDED(compact_mu_);
  // Reads the counters and lease ids from the backend (construction and after an install).
  void LoadFromBackend();
  // CHECK-fails unless `index` is past the applied index (an entry is applied once).
  void CheckNotApplied(uint64_t index) const;

  bool LeaseExists(int64_t id) const { return leases_.count(id) > 0; }

  storage::Backend* backend_;
  std::set<int64_t> leases_;  // applier thread: ids of live leases

  // Applier-owned state.
  // The open group of PutGrouped entries (reused); dirty while it holds unwritten entries.
  // revision_ and applied_index_ already count them.
  rocksdb::WriteBatchWithIndex group_{rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true};
  bool group_dirty_ = false;
  int64_t revision_ = 0;
  int64_t compact_revision_ = -1;
  uint64_t applied_index_ = 0;

  // Published read view.
  mutable absl::Mutex view_mu_;
  ReadView view_ ABSL_GUARDED_BY(view_mu_);
  // Counts of the next pages of paginated ranges (readers; cleared by an install).
  mutable RangeCountCache range_counts_;

  // Background physical compaction.
  absl::Mutex compact_mu_;
  absl::CondVar compact_cv_;  // signalled on every change below
  std::deque<int64_t> compact_queue_ ABSL_GUARDED_BY(compact_mu_);
  int64_t finished_compact_revision_ ABSL_GUARDED_BY(compact_mu_) = 0;
  std::vector<std::pair<int64_t, std::function<void(bool)>>> compact_waiters_
      ABSL_GUARDED_BY(compact_mu_);
  bool closing_ ABSL_GUARDED_BY(compact_mu_) = false;
  // Between BeginInstall and ReloadAfterInstall: no physical compaction starts or continues.
  bool installing_ ABSL_GUARDED_BY(compact_mu_) = false;
  // CompactRange is running, outside compact_mu_.
  bool compacting_ ABSL_GUARDED_BY(compact_mu_) = false;
  std::atomic<bool> install_requested_{false};  // read by CompactRange between batches
  std::function<void(int)> compaction_batch_hook_;
  std::thread compactor_;
};

}  // namespace cairn::mvcc
