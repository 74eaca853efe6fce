// Watch API: resumable watches on a key or a range.
//
// Client::watch().Watch(key, options, callback) starts a watch and returns a Watcher handle.
// Guarantees to the callback, across server restarts, endpoint failover and token expiry:
//  - events arrive in revision order, each exactly once (no gap, no duplicate): after a broken
//    stream the watch is re-created from the last delivered revision + 1;
//  - all events of one revision arrive in one WatchResponse (fragments are reassembled);
//  - if the needed history was compacted, one final response with compact_revision set and
//    canceled = true is delivered; the watch then ends (it is never silently restarted);
//  - after the final response (canceled = true) the callback is not called again.
// All watchers of a client share one gRPC stream; callbacks run on the client's watch thread,
// one at a time, so a slow callback delays the other watchers of the client. A callback may call
// Cancel() on any Watcher (including its own) and may start new watches; it must not block on
// a call of the same client for long.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cairn/future.h"
#include "cairn/kv.h"
#include "cairn/types.h"

namespace cairn {

namespace internal {
class Core;
class WatchManager;
struct WatcherState;
}  // namespace internal

struct WatchOptions : RangeSpec {
  // First revision to deliver (inclusive); 0 = changes after the watch is created.
  Revision start_revision = 0;
  bool prev_kv = false;
  bool filter_put = false;
  bool filter_delete = false;
  // Ask the server for periodic progress notifications (empty responses with header.revision).
  bool progress_notify = false;
  // Let the server split huge revisions; the client reassembles them.
  bool fragment = false;
  // Deliver a response with created = true when the server confirmed the watch (first time only).
  bool created_notify = false;
};

struct WatchResponse {
  ResponseHeader header;
  std::vector<Event> events;
  bool created = false;           // the created notification (created_notify)
  bool progress_notify = false;   // no events; all changes up to header.revision were sent
  bool canceled = false;          // final response
  Revision compact_revision = 0;  // != 0: history needed by the watch was compacted
  std::string cancel_reason;
  absl::Status status;  // why the watch ended, when canceled
};

using WatchCallback = std::function<void(const WatchResponse&)>;

// Handle of one watch. Destroying it cancels the watch. Thread-safe.
class Watcher {
 public:
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Stops the watch; no callback starts after Cancel() returns (a running one may finish,
  // unless Cancel is called from the callback itself). Idempotent.
  void Cancel();
  // Waits until the server confirmed the watch the first time (or it ended / deadline).
  absl::Status WaitCreated(Clock::time_point deadline) const;
  // The revision the watch resumes from after a reconnect (last delivered revision + 1).
  Revision next_revision() const;
  bool done() const;

 private:
  friend class internal::WatchManager;
  Watcher(std::shared_ptr<internal::WatchManager> mgr, std::shared_ptr<internal::WatcherState> st);
  std::shared_ptr<internal::WatchManager> mgr_;
  std::shared_ptr<internal::WatcherState> state_;
};

class WatchClient {
 public:
  explicit WatchClient(std::shared_ptr<internal::Core> core) : core_(std::move(core)) {}

  // Starts watching; returns at once (use created_notify or WaitCreated to know when the server
  // has the watch). INVALID_ARGUMENT for an empty key without from_key/prefix/range.
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(const std::string& key, const WatchOptions& opts,
                                                 WatchCallback callback) const;

  // Asks the server for a progress notification on the shared stream: every watcher then gets a
  // response with progress_notify = true once the server is synced. No-op without a stream.
  void RequestProgress() const;

 private:
  std::shared_ptr<internal::Core> core_;
};

}  // namespace cairn
