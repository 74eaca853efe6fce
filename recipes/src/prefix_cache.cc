#include "cairn/recipes/prefix_cache.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes {

namespace {
constexpr std::chrono::milliseconds kResyncBackoffMin(50);
constexpr std::chrono::milliseconds kResyncBackoffMax(2000);
constexpr int64_t kPageSize = 1000;
}  // namespace

struct PrefixCache::State {
  Kv kv;
  WatchClient watch;
  std::string prefix;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, KeyValue> map;
  Revision revision = 0;
  absl::Status status;
  int64_t resyncs = 0;
  bool stopping = false;
  bool need_resync = false;
  std::unique_ptr<Watcher> watcher;
  std::vector<std::pair<Revision, Promise<bool>>> rev_waiters;

  std::mutex deliver_mu;  // serializes listener calls (taken before mu)
  std::mutex listeners_mu;
  uint64_t next_listener = 1;
  std::map<uint64_t, Listener> listeners;

  std::thread resync_thread;

  State(Kv k, WatchClient w, std::string p)
      : kv(std::move(k)), watch(std::move(w)), prefix(std::move(p)) {}

  // With mu held: completes the waiters whose revision was reached (after the listeners saw it).
  void WakeWaitersLocked() {
    auto it = std::remove_if(rev_waiters.begin(), rev_waiters.end(), [&](auto& w) {
      if (w.second.future().Ready()) return true;  // ended by its deadline or cancel
      if (w.first > revision) return false;
      w.second.Set(true);
      return true;
    });
    rev_waiters.erase(it, rev_waiters.end());
  }

  // With deliver_mu held.
  void Deliver(const std::vector<Event>& events, Revision rev, bool resync) {
    std::vector<Listener> to_call;
    {
      std::lock_guard<std::mutex> lock(listeners_mu);
      for (auto& [id, l] : listeners) to_call.push_back(l);
    }
    for (auto& l : to_call) l(events, rev, resync);
  }

  WatchOptions WatchFrom(Revision rev) const {
    WatchOptions wo;
    if (prefix.empty()) {
      wo.from_key = true;
    } else {
      wo.prefix = true;
    }
    wo.start_revision = rev;
    return wo;
  }

  // Reads every key under the prefix at one revision, in pages of kPageSize keys (each page a
  // Range at the first page's revision, starting after the previous page's last key).
  absl::StatusOr<GetResponse> ReadAll(const CallOptions& call) const {
    GetResponse all;
    std::string from = WatchKey();
    const std::string end = prefix.empty() ? std::string(1, '\0') : PrefixEnd(prefix);
    while (true) {
      GetOptions go;
      go.range_end = end;
      go.limit = kPageSize;
      go.revision = all.header.revision;  // 0 for the first page: latest
      auto page = kv.Get(from, go, call);
      if (!page.ok()) return page.status();
      if (all.header.revision == 0) all.header = page->header;
      for (auto& e : page->kvs) all.kvs.push_back(std::move(e));
      if (!page->more || page->kvs.empty()) break;
      from = all.kvs.back().key + std::string(1, '\0');
    }
    all.count = static_cast<int64_t>(all.kvs.size());
    return all;
  }

  std::string WatchKey() const { return prefix.empty() ? std::string(1, '\0') : prefix; }

  static void OnWatch(const std::weak_ptr<State>& weak, const WatchResponse& r) {
    auto s = weak.lock();
    if (!s) return;
    if (r.canceled) {
      std::lock_guard<std::mutex> lock(s->mu);
      if (!s->stopping) {
        s->need_resync = true;
        if (!r.status.ok()) s->status = r.status;
        s->cv.notify_all();
      }
      return;
    }
    if (r.events.empty()) return;
    std::lock_guard<std::mutex> dl(s->deliver_mu);
    Revision rev = 0;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      if (s->stopping) return;
      for (const Event& e : r.events) {
        if (e.type == EventType::kPut) {
          s->map[e.kv.key] = e.kv;
        } else {
          s->map.erase(e.kv.key);
        }
        rev = std::max(rev, e.kv.mod_revision);
      }
      s->revision = std::max(s->revision, rev);
      rev = s->revision;
    }
    s->Deliver(r.events, rev, false);
    std::lock_guard<std::mutex> lock(s->mu);
    s->WakeWaitersLocked();
  }

  absl::Status StartWatchLocked(const std::shared_ptr<State>& self) {
    std::weak_ptr<State> weak = self;
    auto w = watch.Watch(WatchKey(), WatchFrom(revision + 1),
                         [weak](const WatchResponse& r) { OnWatch(weak, r); });
    if (!w.ok()) return w.status();
    watcher = std::move(*w);
    return absl::OkStatus();
  }

  static void ResyncLoop(std::weak_ptr<State> weak) {
    std::chrono::milliseconds backoff = kResyncBackoffMin;
    while (true) {
      auto s = weak.lock();
      if (!s) return;
      std::unique_ptr<Watcher> old;
      {
        std::unique_lock<std::mutex> lock(s->mu);
        s->cv.wait(lock, [&] { return s->stopping || s->need_resync; });
        if (s->stopping) return;
        old = std::move(s->watcher);
      }
      if (old) old->Cancel();
      old.reset();
      auto got = s->ReadAll(CallOptions{});
      if (!got.ok()) {
        std::unique_lock<std::mutex> lock(s->mu);
        s->status = got.status();
        s->cv.wait_for(lock, backoff, [&] { return s->stopping; });
        backoff = std::min(backoff * 2, kResyncBackoffMax);
        continue;
      }
      backoff = kResyncBackoffMin;
      std::lock_guard<std::mutex> dl(s->deliver_mu);
      std::vector<Event> diff;
      Revision rev = 0;
      {
        std::lock_guard<std::mutex> lock(s->mu);
        if (s->stopping) return;
        std::map<std::string, KeyValue> fresh;
        for (auto& kv : got->kvs) fresh.emplace(kv.key, kv);
        for (auto& [k, kv] : s->map) {
          if (!fresh.count(k)) {
            Event e;
            e.type = EventType::kDelete;
            e.kv.key = k;
            e.kv.mod_revision = got->header.revision;
            diff.push_back(std::move(e));
          }
        }
        for (auto& [k, kv] : fresh) {
          auto it = s->map.find(k);
          if (it == s->map.end() || it->second.mod_revision != kv.mod_revision) {
            Event e;
            e.type = EventType::kPut;
            e.kv = kv;
            diff.push_back(std::move(e));
          }
        }
        s->map = std::move(fresh);
        s->revision = std::max(s->revision, got->header.revision);
        rev = s->revision;
        ++s->resyncs;
        s->status = absl::OkStatus();
        s->need_resync = false;
        absl::Status st = s->StartWatchLocked(s);
        if (!st.ok()) {
          s->status = st;
          s->need_resync = true;
        }
      }
      s->Deliver(diff, rev, true);
      std::lock_guard<std::mutex> lock(s->mu);
      s->WakeWaitersLocked();
    }
  }
};

absl::StatusOr<std::unique_ptr<PrefixCache>> PrefixCache::Start(const Kv& kv,
                                                                const WatchClient& watch,
                                                                std::string prefix,
                                                                const CallOptions& call) {
  auto state = std::make_shared<State>(kv, watch, std::move(prefix));
  auto got = state->ReadAll(call);
  if (!got.ok()) return got.status();
  {
    std::lock_guard<std::mutex> lock(state->mu);
    for (auto& e : got->kvs) state->map.emplace(e.key, e);
    state->revision = got->header.revision;
    if (absl::Status st = state->StartWatchLocked(state); !st.ok()) return st;
  }
  state->resync_thread = std::thread(&State::ResyncLoop, std::weak_ptr<State>(state));
  return std::unique_ptr<PrefixCache>(new PrefixCache(std::move(state)));
}

PrefixCache::~PrefixCache() {
  std::unique_ptr<Watcher> w;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopping = true;
    w = std::move(state_->watcher);
    state_->cv.notify_all();
    for (auto& [rev, p] : state_->rev_waiters) p.Set(absl::CancelledError("cache destroyed"));
    state_->rev_waiters.clear();
  }
  if (w) w->Cancel();
  if (state_->resync_thread.joinable()) state_->resync_thread.join();
  std::lock_guard<std::mutex> dl(state_->deliver_mu);  // no listener runs after this
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->watcher.reset();
}

std::optional<KeyValue> PrefixCache::Get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->map.find(key);
  if (it == state_->map.end()) return std::nullopt;
  return it->second;
}

std::vector<KeyValue> PrefixCache::List(Revision* revision) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (revision != nullptr) *revision = state_->revision;
  std::vector<KeyValue> out;
  out.reserve(state_->map.size());
  for (auto& [k, kv] : state_->map) out.push_back(kv);
  return out;
}

size_t PrefixCache::size() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->map.size();
}

Revision PrefixCache::revision() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->revision;
}

int64_t PrefixCache::resyncs() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->resyncs;
}

absl::Status PrefixCache::status() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->status;
}

uint64_t PrefixCache::AddListener(Listener listener) {
  std::lock_guard<std::mutex> lock(state_->listeners_mu);
  uint64_t id = state_->next_listener++;
  state_->listeners.emplace(id, std::move(listener));
  return id;
}

void PrefixCache::RemoveListener(uint64_t id) {
  std::lock_guard<std::mutex> dl(state_->deliver_mu);
  std::lock_guard<std::mutex> lock(state_->listeners_mu);
  state_->listeners.erase(id);
}

absl::Status PrefixCache::WaitForRevision(Revision rev, const CallOptions& call) const {
  return WaitForRevisionAsync(rev, call).Get().status();
}

Future<Completed> PrefixCache::WaitForRevisionAsync(Revision rev, const CallOptions& call) const {
  // Thread-free: a promise the cache's watch completes, ended early by the cancel token or the
  // recipes' timer at the deadline.
  Promise<bool> p;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->revision >= rev) return MakeReadyFuture<Completed>(Completed{});
    if (state_->stopping)
      return MakeReadyFuture<Completed>(absl::CancelledError("cache destroyed"));
    state_->rev_waiters.emplace_back(rev, p);
  }
  return internal::Map<bool, Completed>(
      internal::Bounded(p, call, "cache: revision not reached before deadline"),
      [](absl::StatusOr<bool> r) -> absl::StatusOr<Completed> {
        if (!r.ok()) return r.status();
        return Completed{};
      });
}

}  // namespace cairn::recipes
