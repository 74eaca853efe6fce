#include "server/mvcc/watch_hub.h"

#include <algorithm>

#include "absl/time/time.h"
#include "server/base/check.h"
#include "server/base/thread_name.h"

namespace cairn::mvcc {
namespace {

// At most this many events are read from history for one watcher in one catch-up round (a
// revision is never split, so a single huge revision may exceed it).
constexpr size_t kMaxCatchupEvents = 1000;
// The syncer retries full streams and checks progress timers at this period.
constexpr int kSyncerPeriodMs = 100;

bool Wanted(const WatchSpec& spec, const mvccpb::Event& ev) {
  if (spec.no_put && ev.type() == mvccpb::Event::PUT) return false;
  if (spec.no_delete && ev.type() == mvccpb::Event::DELETE) return false;
  return true;
}

// The view of a catch-up read: filters applied by position, the events shared, not copied.
EventView ViewOf(const WatchSpec& spec, std::vector<mvccpb::Event> events) {
  EventView view;
  view.prev_kv = spec.prev_kv;
  for (uint32_t i = 0; i < events.size(); ++i) {
    if (Wanted(spec, events[i])) view.selected.push_back(i);
  }
  view.batch = std::make_shared<const std::vector<mvccpb::Event>>(std::move(events));
  return view;
}

}  // namespace

void EventView::CopyTo(size_t i, mvccpb::Event* out) const {
  const mvccpb::Event& ev = event(i);
  if (prev_kv) {
    *out = ev;
    return;
  }
  out->set_type(ev.type());
  *out->mutable_kv() = ev.kv();
}

std::vector<mvccpb::Event> EventView::Materialize() const {
  std::vector<mvccpb::Event> out(size());
  for (size_t i = 0; i < size(); ++i) CopyTo(i, &out[i]);
  return out;
}

WatchHub::WatchHub(KvStore* kv, int64_t progress_interval_ms, base::Clock* clock)
    : kv_(kv), progress_interval_ms_(progress_interval_ms), clock_(clock) {
  notified_rev_ = kv_->View().revision;
  syncer_ = std::thread([this] {
    base::SetThreadName("cairn-watchsync");
    SyncerLoop();
  });
}

WatchHub::~WatchHub() {
  {
    absl::MutexLock l(&mu_);
    closing_ = true;
  }
  cv_.SignalAll();
  syncer_.join();
}

int64_t WatchHub::notified_revision() const {
  absl::MutexLock l(&mu_);
  return notified_rev_;
}

size_t WatchHub::synced_count() const {
  absl::MutexLock l(&mu_);
  return synced_.size();
}

size_t WatchHub::unsynced_count() const {
  absl::MutexLock l(&mu_);
  return unsynced_.size();
}

void WatchHub::MakeSynced(const WatcherPtr& w) {
  unsynced_.erase(w);
  w->synced = true;
  synced_.Add(w->spec.key, w->spec.range_end, w.get());
}

void WatchHub::MakeUnsynced(const WatcherPtr& w) {
  if (w->synced) {
    CAIRN_CHECK(synced_.Remove(w->spec.key, w->spec.range_end, w.get()))
        << "synced watcher missing from the index";
  }
  w->synced = false;
  unsynced_.insert(w);
  cv_.SignalAll();
}

void WatchHub::Detach(const WatcherPtr& w) {
  MakeUnsynced(w);  // takes it out of the synced index
  unsynced_.erase(w);
  auto s = by_sink_.find(w->sink);
  if (s != by_sink_.end()) {
    s->second.erase(w->watch_id);
    if (s->second.empty()) by_sink_.erase(s);
  }
}

void WatchHub::Add(WatchSink* sink, int64_t watch_id, const WatchSpec& spec,
                   const std::function<void(int64_t)>& on_registered) {
  absl::MutexLock l(&mu_);
  auto w = std::make_shared<Watcher>(Watcher{sink, watch_id, spec, 0});
  on_registered(notified_rev_);
  by_sink_[sink][watch_id] = w;
  if (spec.start_revision == 0 || spec.start_revision > notified_rev_) {
    w->next_rev = spec.start_revision == 0 ? notified_rev_ + 1 : spec.start_revision;
    MakeSynced(w);
  } else {
    w->next_rev = spec.start_revision;
    unsynced_.insert(w);
    cv_.SignalAll();
  }
}

bool WatchHub::Cancel(WatchSink* sink, int64_t watch_id,
                      const std::function<void(int64_t)>& on_removed) {
  absl::MutexLock l(&mu_);
  auto s = by_sink_.find(sink);
  if (s == by_sink_.end()) return false;
  auto it = s->second.find(watch_id);
  if (it == s->second.end()) return false;
  WatcherPtr w = it->second;
  Detach(w);
  on_removed(notified_rev_);
  AnswerProgressIfSynced(sink);
  return true;
}

void WatchHub::RemoveSink(WatchSink* sink) {
  absl::MutexLock l(&mu_);
  progress_pending_.erase(sink);
  auto s = by_sink_.find(sink);
  if (s == by_sink_.end()) return;
  std::vector<WatcherPtr> ws;
  for (auto& [id, w] : s->second) ws.push_back(w);
  for (auto& w : ws) Detach(w);
}

void WatchHub::RequestProgress(WatchSink* sink) {
  absl::MutexLock l(&mu_);
  progress_pending_.insert(sink);
  AnswerProgressIfSynced(sink);
}

void WatchHub::AnswerProgressIfSynced(WatchSink* sink) {
  if (!progress_pending_.count(sink)) return;
  auto s = by_sink_.find(sink);
  if (s != by_sink_.end()) {
    for (auto& [id, w] : s->second) {
      if (!w->synced) return;  // answered once every watcher of the stream is synced
    }
  }
  progress_pending_.erase(sink);
  sink->Progress(-1, notified_rev_);
}

void WatchHub::Kick() { cv_.SignalAll(); }

void WatchHub::Notify(int64_t revision, std::vector<mvccpb::Event> events) {
  absl::MutexLock l(&mu_);
  CAIRN_CHECK(revision > notified_rev_)
      << "notify out of order: " << revision << " after " << notified_rev_;
  notified_rev_ = revision;
  // Each reached watcher with the positions of its events, in the order first reached.
  std::vector<std::pair<Watcher*, std::vector<uint32_t>>> hits;
  std::unordered_map<Watcher*, size_t> slot;
  for (uint32_t i = 0; i < events.size(); ++i) {
    const mvccpb::Event& ev = events[i];
    synced_.ForEachContaining(ev.kv().key(), [&](Watcher* w) {
      if (revision < w->next_rev) return;  // starts in the future, or already caught up
      if (!Wanted(w->spec, ev)) return;
      auto [it, fresh] = slot.emplace(w, hits.size());
      if (fresh) hits.emplace_back(w, std::vector<uint32_t>());
      hits[it->second].second.push_back(i);
    });
  }
  if (!hits.empty()) {
    auto batch = std::make_shared<const std::vector<mvccpb::Event>>(std::move(events));
    std::vector<WatchSink*> delivered;  // the sinks to flush, once each
    for (auto& [raw, selected] : hits) {
      EventView view{batch, std::move(selected), raw->spec.prev_kv};
      if (raw->sink->Deliver(raw->watch_id, revision, view, raw->spec.fragment)) {
        raw->next_rev = revision + 1;
        raw->sent_since_progress = true;
        delivered.push_back(raw->sink);
        continue;
      }
      // The stream is full: fall behind and catch up from history, never block the applier.
      raw->next_rev = revision;
      MakeUnsynced(by_sink_[raw->sink][raw->watch_id]);
    }
    std::sort(delivered.begin(), delivered.end());
    delivered.erase(std::unique(delivered.begin(), delivered.end()), delivered.end());
    for (WatchSink* sink : delivered) sink->Flush();
  }
  if (!unsynced_.empty()) cv_.SignalAll();
}

void WatchHub::ResetAfterInstall() {
  int64_t revision = kv_->View().revision;
  absl::MutexLock l(&mu_);
  CAIRN_CHECK(revision >= notified_rev_)
      << "snapshot install moved the store back: " << revision << " < " << notified_rev_;
  // A synced watcher's next_rev is notified_rev_ + 1 (or its future start revision): exactly
  // where the catch-up from history must begin.
  std::vector<WatcherPtr> synced;
  for (auto& [sink, ws] : by_sink_) {
    for (auto& [id, w] : ws) {
      if (w->synced) synced.push_back(w);
    }
  }
  for (const WatcherPtr& w : synced) MakeUnsynced(w);
  notified_rev_ = revision;
  cv_.SignalAll();
}

bool WatchHub::SyncOnce() {
  std::vector<WatcherPtr> todo;
  {
    absl::MutexLock l(&mu_);
    todo.assign(unsynced_.begin(), unsynced_.end());
  }
  if (todo.empty()) return false;
  ReadView view = kv_->View();
  bool progressed = false;
  for (const WatcherPtr& w : todo) {
    std::vector<mvccpb::Event> events;
    int64_t next = 0;
    // Only the syncer changes an unsynced watcher's next_rev, so reading it unlocked is safe.
    absl::Status st = kv_->ReadEvents(view, w->next_rev, w->spec.key, w->spec.range_end,
                                      w->spec.prev_kv, kMaxCatchupEvents, &events, &next);
    absl::MutexLock l(&mu_);
    if (!unsynced_.count(w)) continue;  // canceled meanwhile
    if (!st.ok()) {
      w->sink->Compacted(w->watch_id, view.compact_revision);
      WatchSink* sink = w->sink;
      Detach(w);
      AnswerProgressIfSynced(sink);
      progressed = true;
      continue;
    }
    EventView delivery = ViewOf(w->spec, std::move(events));
    if (delivery.size() > 0) {
      if (!w->sink->Deliver(w->watch_id, view.revision, delivery, w->spec.fragment)) continue;
      w->sink->Flush();
      w->sent_since_progress = true;
    }
    if (next != w->next_rev) progressed = true;
    w->next_rev = next;
    if (w->next_rev > notified_rev_) {
      MakeSynced(w);
      AnswerProgressIfSynced(w->sink);
      progressed = true;
    }
  }
  return progressed;
}

void WatchHub::ProgressTick() {
  absl::MutexLock l(&mu_);
  const int64_t revision = notified_rev_;
  auto tick = [&](Watcher* w) {
    if (w->spec.progress_notify && !w->sent_since_progress)
      w->sink->Progress(w->watch_id, revision);
    w->sent_since_progress = false;
  };
  synced_.ForEach(tick);
}

void WatchHub::SyncerLoop() {
  int64_t next_progress_ms = clock_->NowMs() + std::max<int64_t>(progress_interval_ms_, 1);
  while (true) {
    {
      absl::MutexLock l(&mu_);
      if (closing_) return;
    }
    bool progressed = SyncOnce();
    if (progress_interval_ms_ > 0 && clock_->NowMs() >= next_progress_ms) {
      ProgressTick();
      next_progress_ms = clock_->NowMs() + progress_interval_ms_;
    }
    if (progressed) continue;
    absl::MutexLock l(&mu_);
    if (closing_) return;
    // Periodic: a full stream drains without telling us, and the progress timer must fire.
    cv_.WaitWithTimeout(&mu_, absl::Milliseconds(kSyncerPeriodMs));
  }
}

}  // namespace cairn::mvcc
