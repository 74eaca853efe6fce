// PrefixCache: a local, watch-maintained copy of every key under a prefix.
//
// Start() reads the prefix once (at one revision, in Ranges of up to 1,000 keys) and then
// watches it from that read's revision + 1,
// so the copy misses no change and applies each exactly once, in revision order. When the watch
// ends (its history was compacted, or the server canceled it), the cache resyncs: it reads the
// prefix again, reports the difference to listeners as synthetic events, and watches from the
// new revision + 1. Resync attempts back off from 50 ms to 2 s and repeat until they succeed or
// the cache is destroyed; status() reports the last failure meanwhile.
//
// Listeners get the events of one revision (or of one resync) at a time, in order, on the
// client's watch thread or the cache's resync thread, never two at once; they must be quick and
// must not block on calls of the same client. Reads (Get/List/revision) are thread-safe and may
// be called from listeners.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/client.h"
#include "cairn/recipes/async.h"

namespace cairn::recipes {

class PrefixCache {
 public:
  // `events`: puts (with the new KeyValue) and deletes (key and deletion revision) in order;
  // `revision`: the revision the cache reflects after applying them; `resync`: true when the
  // events are a difference computed after a resync, not the watch's own events.
  using Listener =
      std::function<void(const std::vector<Event>& events, Revision revision, bool resync)>;

  // Reads `prefix` and starts the watch. The empty prefix means every key. Errors: the initial
  // read's (DEADLINE_EXCEEDED, CANCELLED, server errors) or the watch's INVALID_ARGUMENT.
  static absl::StatusOr<std::unique_ptr<PrefixCache>> Start(const Kv& kv, const WatchClient& watch,
                                                            std::string prefix,
                                                            const CallOptions& call = {});
  static absl::StatusOr<std::unique_ptr<PrefixCache>> Start(const Client& client,
                                                            std::string prefix,
                                                            const CallOptions& call = {}) {
    return Start(client.kv(), client.watch(), std::move(prefix), call);
  }
  // Stops the watch and the resync thread; no listener runs after the destructor returns.
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  std::optional<KeyValue> Get(const std::string& key) const;
  // Every cached key, in key order; `revision` (if not null) gets the revision they reflect.
  std::vector<KeyValue> List(Revision* revision = nullptr) const;
  size_t size() const;
  // The revision the cache reflects.
  Revision revision() const;
  // How many resyncs happened (after compaction or a canceled watch).
  int64_t resyncs() const;
  // OK, or the last resync failure while the cache is out of date.
  absl::Status status() const;

  // Adds a listener (called for changes after this call); returns its id.
  uint64_t AddListener(Listener listener);
  // Removes it; when this returns, the listener is not running and will not run again (do not
  // call from inside a listener).
  void RemoveListener(uint64_t id);

  // Waits until revision() >= rev and the listeners have been called for it. Errors:
  // DEADLINE_EXCEEDED / CANCELLED. Fiber-aware.
  absl::Status WaitForRevision(Revision rev, const CallOptions& call = {}) const;
  // WaitForRevision's async form, holding no thread while it waits (the cache's watch completes
  // it; see async.h): this object must outlive the future's completion.
  Future<Completed> WaitForRevisionAsync(Revision rev, const CallOptions& call = {}) const;

  struct State;  // internal

 private:
  explicit PrefixCache(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace cairn::recipes
