// WatchResponseQueue: the responses one watch stream has still to write, in order.
//
// gRPC allows one write in flight per stream, and each write's completion is a hop to a gRPC
// thread before the next write can start. A stream whose watchers get a response per revision
// therefore builds a backlog under write load, and every queued response costs one more hop:
// the latency grows with the load it is meant to absorb. So a revision's events for a watcher
// whose earlier events response is still queued (not yet being written) join that response, as
// etcd's catch-up sends several revisions in one response (docs/threading.md, "Handoffs"):
//   - the watcher's events stay in revision order, and one revision is never split;
//   - the merged response's header carries the newer revision;
//   - no events move ahead of a non-events response (created, canceled, progress, a fragment)
//     queued after the response they would join, so whatever it reports stays behind every
//     event it followed;
//   - a merged response stays within the caller's byte limit.
// The response being written is never changed.
//
// Not thread-safe: the stream holds its lock around every call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "etcdserverpb/rpc.pb.h"

namespace cairn::api {

class WatchResponseQueue {
 public:
  // Push's `events_of` for a response that is not whole revisions' events of one watcher.
  static constexpr int64_t kNotEvents = std::numeric_limits<int64_t>::min();

  // Appends `resp`. `events_of`: the watch id when `resp` holds only whole revisions' events of
  // that watcher, so later events of it may join it; kNotEvents otherwise.
  void Push(etcdserverpb::WatchResponse resp, int64_t events_of = kNotEvents);

  // Moves the events of `resp` (whole revisions of watcher `watch_id`'s events, with the newest
  // revision in its header) into that watcher's latest queued events response, when the rules
  // above allow it and the result stays within `limit` bytes. Returns false, leaving `resp` as it
  // was, when they do not.
  bool Merge(int64_t watch_id, etcdserverpb::WatchResponse& resp, size_t limit);

  bool empty() const { return out_.empty(); }
  size_t size() const { return out_.size(); }
  // Serialized bytes of the queued responses, the one being written included.
  size_t bytes() const { return bytes_; }
  // The front response, now being written: it stays in place, unchanged, until PopFront.
  const etcdserverpb::WatchResponse& StartFront();
  bool front_in_flight() const { return in_flight_; }
  // Drops the front response once its write has completed.
  void PopFront();

 private:
  struct Queued {
    etcdserverpb::WatchResponse resp;
    size_t bytes;
  };
  // out_[i] is response number front_seq_ + i.
  std::deque<Queued> out_;
  uint64_t front_seq_ = 0;
  bool in_flight_ = false;
  size_t bytes_ = 0;
  // Events may join only responses numbered at least this.
  uint64_t merge_from_ = 0;
  // Each watcher's latest queued events response (an entry may be stale: checked on use).
  absl::flat_hash_map<int64_t, uint64_t> last_events_;
};

}  // namespace cairn::api
