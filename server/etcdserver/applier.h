// Applier: applies committed raft entries to the member's state, in log order, on its own thread
// (ARCHITECTURE.md, "How a write flows").
//
// One RocksDB batch per committed entry: the entry's KV and lease changes, its membership change
// and the applied index are written together (KvStore::Begin / Commit), so a crash leaves every
// entry either wholly applied or not at all, and replay after a restart neither skips nor repeats
// one (an entry at or below the store's applied index is skipped). A run of consecutive plain
// puts is one batch (KvStore::PutGrouped / FlushGroup), with the same all-or-nothing property
// for the run. The applier dispatches on the
// request type: KV and lease records to mvcc, membership to Membership; then it notifies
// watchers and the lessor, answers the proposer's waiter, and releases linearizable reads.
//
// Thread contract: Enqueue*, applied_index() and entries_applied() are thread-safe (the raft
// thread enqueues). Everything else, including the hooks, runs on the applier thread; hooks must
// not block. ApplyEntries/InstallSnapshot may be called directly only while the thread is not
// running (tests). Stepping (the whole-member simulation): without Start(), a caller runs the
// queue on a thread of its own with RunQueued(), which then is the applier thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cairnpb/internal.pb.h"
#include "server/auth/auth_store.h"
#include "server/etcdserver/alarms.h"
#include "server/etcdserver/membership.h"
#include "server/etcdserver/read_waits.h"
#include "server/etcdserver/wait_registry.h"
#include "server/lease/lessor.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/watch_hub.h"
#include "server/raft/message.h"
#include "server/storage/backend.h"

namespace cairn::etcdserver {

// Applies one KV or lease request to `batch` (the applier's dispatch; tests use it too).
// CHECK-fails on a membership request or an unknown request type: those never reach it.
mvcc::ApplyResult ApplyKvRequest(mvcc::KvStore* kv, mvcc::KvStore::EntryBatch& batch,
                                 const cairnpb::InternalRequest& request);

class Applier {
 public:
  struct Deps {
    storage::Backend* backend = nullptr;
    mvcc::KvStore* kv = nullptr;
    mvcc::WatchHub* watch_hub = nullptr;
    lease::Lessor* lessor = nullptr;
    Membership* membership = nullptr;
    Alarms* alarms = nullptr;         // may be null (tests): alarm entries then change nothing
    auth::AuthStore* auth = nullptr;  // may be null (tests): auth entries then fail
    WaitRegistry* waits = nullptr;
    ReadWaits* reads = nullptr;  // may be null (tests)
    uint64_t member_id = 0;
    size_t max_batch_entries = 1024;  // committed entries applied (and published) together
  };
  struct Hooks {
    // After each applied batch: the conf changes among its entries (index, change), in order,
    // and the applied index. For the raft driver (RawNode::ApplyConfChange, snapshots).
    std::function<void(std::vector<std::pair<uint64_t, raft::ConfChange>>, uint64_t)> on_applied;
    // A peer was added or its peer URLs changed (never this member).
    std::function<void(uint64_t, const std::vector<std::string>&)> on_peer_set;
    // A peer was removed (never this member).
    std::function<void(uint64_t)> on_peer_removed;
    // This member's own removal was applied.
    std::function<void()> on_removed;
    // Tests and the simulation: each entry the applier handled (every entry of a batch but those
    // skipped as already in the store), in order, after its batch is committed.
    std::function<void(const raft::Entry&)> on_entry;
    // Tests and the simulation: a received snapshot was installed; the store's applied index.
    std::function<void(uint64_t)> on_installed;
  };

  Applier(const Deps& deps, Hooks hooks);
  ~Applier();
  Applier(const Applier&) = delete;
  Applier& operator=(const Applier&) = delete;

  // Starts the applier thread.
  void Start();
  // Applies what is queued, then joins the thread. Idempotent.
  void Stop();

  // Queues committed entries (raft thread), in log order.
  void Enqueue(std::vector<raft::Entry> entries);
  // Queues the install of a received snapshot file; `installed` runs on the applier thread after.
  void EnqueueSnapshot(std::string path, std::function<void()> installed);
  // Queues `f` to run on the applier thread after everything queued before it.
  void EnqueueCallback(std::function<void()> f);
  // Stepping: runs everything queued (and queued meanwhile) on the caller's thread. Only while the
  // thread is not running.
  void RunQueued();

  uint64_t applied_index() const { return applied_.load(); }
  uint64_t entries_applied() const { return entries_.load(); }

  // One step of the thread: applies `entries` (consecutive committed entries) as one batch of
  // RocksDB writes, one publish and one watcher notification.
  void ApplyEntries(std::vector<raft::Entry>& entries);
  // Installs a snapshot file received from the leader (docs/snapshot_format.md).
  void InstallSnapshot(const std::string& path);

 private:
  struct Job {
    std::vector<raft::Entry> entries;
    std::string snapshot_path;       // install this first (non-empty)
    std::function<void()> callback;  // run after the above
  };
  // What applying one entry produced, for the notifications after the batch.
  struct Applied {
    uint64_t proposer = 0;
    uint64_t id = 0;
    mvcc::ApplyResult result;
  };

  void Push(Job job);
  void Loop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); }
  void RunJobs(std::deque<Job>& jobs);
  // Each returns true when it wrote to the store.
  bool ApplyConfChangeEntry(const raft::Entry& e, bool skip);
  void ApplyMemberEntry(const raft::Entry& e, const cairnpb::InternalRequest& r);
  void AnswerConfChange(const raft::ConfChange& cc, const cairnpb::InternalRequest& ctx,
                        bool valid);
  void Notify(std::vector<Applied>& results);

  Deps deps_;
  Hooks hooks_;
  std::atomic<uint64_t> applied_{0};
  std::atomic<uint64_t> entries_{0};

  absl::Mutex mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace cairn::etcdserver
