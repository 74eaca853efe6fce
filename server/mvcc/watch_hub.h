// WatchHub: etcd's watchable store. Every watcher is in one of two groups:
//   synced:   at the head; Notify() pushes each new revision's matching events to it;
//   unsynced: behind (a start revision in the past, or its stream was full); the syncer thread
//             reads its events from history (KvStore::ReadEvents) and, once it has everything up
//             to the last notified revision, moves it to synced under the hub lock.
// Synced watchers are indexed by key range (KeyRangeIndex: single keys hashed, ranges in an
// interval treap), so Notify finds each event's watchers in about O(log watchers + matches), and
// hands them positions in one shared, immutable batch per revision (EventView) instead of copies.
// A stream whose buffer is full never blocks Notify (the applier) or other watchers: its watcher
// simply drops to unsynced and catches up later from the store, so memory stays bounded by the
// per-stream buffer. A watcher whose next revision falls below the compact revision is canceled
// with compact_revision set.
//
// Guarantees (tested in tests/unit/mvcc/watch_hub_test.cc): events reach a watcher in revision
// order, each once, none skipped inside the history window; one revision's events are never split
// across deliveries; a progress notification at revision R is queued on a stream only after every
// event <= R of every watcher of that stream.
//
// Thread contract: all methods are thread-safe. Notify() is called by the applier thread, in
// revision order, after the revision is published. Sink methods are called with the hub lock held
// and must not call back into the hub nor block.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "mvccpb/kv.pb.h"
#include "server/base/clock.h"
#include "server/mvcc/key_range_index.h"
#include "server/mvcc/kv_store.h"

namespace cairn::mvcc {

// The events of one delivery to one watcher, without copying them: positions in a shared,
// immutable batch. Notify makes one batch per revision, shared by every watcher it reaches; a
// catch-up read makes one per read. Filters are already applied to `selected`; prev_kv is left
// in the batch and only `prev_kv` says whether the watcher wants it. A sink may keep `batch`.
struct EventView {
  std::shared_ptr<const std::vector<mvccpb::Event>> batch;
  std::vector<uint32_t> selected;  // positions in *batch, ascending, never empty
  bool prev_kv = false;

  size_t size() const { return selected.size(); }
  const mvccpb::Event& event(size_t i) const { return (*batch)[selected[i]]; }
  // Event i as the watcher receives it (prev_kv dropped unless wanted).
  void CopyTo(size_t i, mvccpb::Event* out) const;
  std::vector<mvccpb::Event> Materialize() const;
};

// The receiving end of one watch stream (implemented by the gRPC Watch stream).
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // Queues events of watch_id with header revision `revision`. Returns false (queuing nothing)
  // when the stream's buffer is full. The sink may hold what it queued until Flush().
  virtual bool Deliver(int64_t watch_id, int64_t revision, const EventView& events,
                       bool fragment) = 0;
  // Everything delivered so far may leave now. The hub calls it once per sink after the
  // deliveries of one revision (Notify) or of one catch-up read, so a stream writes one revision's
  // responses to its N watchers as one batch (one flush) instead of starting a write per watcher.
  virtual void Flush() {}
  // Control messages: always queued (their number is bounded by watchers and requests).
  virtual void Compacted(int64_t watch_id, int64_t compact_revision) = 0;
  // A progress notification: watch_id -1 answers a progress request for the whole stream.
  virtual void Progress(int64_t watch_id, int64_t revision) = 0;
};

struct WatchSpec {
  std::string key;
  std::string range_end;       // etcd semantics: empty = key only, "\0" = every key >= key
  int64_t start_revision = 0;  // 0 = from the next revision
  bool prev_kv = false;
  bool no_put = false;
  bool no_delete = false;
  bool progress_notify = false;
  bool fragment = false;
};

class WatchHub {
 public:
  // `kv` must outlive the hub. `progress_interval_ms` is etcd's watch progress notify interval
  // (<= 0 disables periodic notifications), measured on `clock` (not owned; outlives the hub).
  WatchHub(KvStore* kv, int64_t progress_interval_ms, base::Clock* clock = base::Clock::Real());
  ~WatchHub();

  // The revision watchers are synced to: events up to it have been handed to synced watchers.
  int64_t notified_revision() const ABSL_LOCKS_EXCLUDED(mu_);

  // Registers watcher `watch_id` of `sink`. `on_registered(header_revision)` runs under the hub
  // lock before any event can be delivered (the caller queues its "created" response there).
  void Add(WatchSink* sink, int64_t watch_id, const WatchSpec& spec,
           const std::function<void(int64_t)>& on_registered) ABSL_LOCKS_EXCLUDED(mu_);
  // Removes one watcher; false if unknown. `on_removed(revision)` runs under the hub lock.
  bool Cancel(WatchSink* sink, int64_t watch_id, const std::function<void(int64_t)>& on_removed)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Removes every watcher of `sink`; after it returns the hub never calls `sink` again.
  void RemoveSink(WatchSink* sink) ABSL_LOCKS_EXCLUDED(mu_);
  // A progress request: answered (Progress(-1, R)) as soon as every watcher of the sink is synced.
  void RequestProgress(WatchSink* sink) ABSL_LOCKS_EXCLUDED(mu_);
  // The sink has room again: wake the syncer.
  void Kick();

  // Applier thread: revision `revision` with its events is published. Cost: one index lookup per
  // event (about O(log watchers + matches)); the events are moved into one shared batch, copied
  // by no watcher here.
  void Notify(int64_t revision, std::vector<mvccpb::Event> events) ABSL_LOCKS_EXCLUDED(mu_);

  // Applier thread, after a snapshot install and KvStore::ReloadAfterInstall(): the store jumped
  // to a new revision without Notify() for the revisions in between. Every synced watcher becomes
  // unsynced at its next revision, and the notified revision becomes the store's published one;
  // the syncer then catches each watcher up from the new store's history (the events in between
  // are there unless compacted) or cancels it with compact_revision if its next revision has been
  // compacted away. The guarantees above still hold. The published revision must not be below
  // the notified one (an install only moves the state forward).
  void ResetAfterInstall() ABSL_LOCKS_EXCLUDED(mu_);

  // For tests and metrics.
  size_t synced_count() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t unsynced_count() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Watcher {
    WatchSink* sink;
    int64_t watch_id;
    WatchSpec spec;
    int64_t next_rev;  // first revision not yet delivered
    bool synced = false;
    bool sent_since_progress = false;
  };
  using WatcherPtr = std::shared_ptr<Watcher>;

  void MakeSynced(const WatcherPtr& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MakeUnsynced(const WatcherPtr& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Detach(const WatcherPtr& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AnswerProgressIfSynced(WatchSink* sink) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SyncerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // One catch-up round; returns true if any watcher made progress.
  bool SyncOnce() ABSL_LOCKS_EXCLUDED(mu_);
  void ProgressTick() ABSL_LOCKS_EXCLUDED(mu_);

  KvStore* const kv_;
  const int64_t progress_interval_ms_;
  base::Clock* const clock_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // wakes the syncer: unsynced watchers, room in a stream, closing
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  int64_t notified_rev_ ABSL_GUARDED_BY(mu_) = 0;
  // Synced watchers indexed by their key range for Notify.
  KeyRangeIndex<Watcher> synced_ ABSL_GUARDED_BY(mu_);
  std::set<WatcherPtr> unsynced_ ABSL_GUARDED_BY(mu_);
  std::map<WatchSink*, std::map<int64_t, WatcherPtr>> by_sink_ ABSL_GUARDED_BY(mu_);
  std::set<WatchSink*> progress_pending_ ABSL_GUARDED_BY(mu_);
  std::thread syncer_;
};

}  // namespace cairn::mvcc
