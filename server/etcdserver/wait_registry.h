// WaitRegistry: the member's pending client requests, by request id, each with the callback that
// answers it and its deadline (etcd's wait.Wait plus the request timeout).
//
//   client thread:  Register(id, waiter)            -> false when full ("too many requests")
//   applier thread: Pin(id) before the entry applies, Take(id) once applied -> answer it
//   raft thread:    Expire(now) each tick           -> answer each with "request timed out"
//   Stop:           FailAll(stopped)
//
// Thread safety: thread-safe. Callbacks are never run under the registry's lock: Take, Expire and
// FailAll hand the waiters back to the caller, which answers them.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cairnpb/peer.pb.h"
#include "server/mvcc/kv_store.h"

namespace cairn::etcdserver {

// One pending request: exactly one of `done` (a KV/lease write) or `member_done` (a membership
// change) is set.
struct Waiter {
  std::function<void(mvcc::ApplyResult)> done;
  std::function<void(absl::StatusOr<cairnpb::Member>)> member_done;
  // Set by WaitRegistry::Pin once its entry is being applied: Expire skips it.
  bool pinned = false;

  // Answers with `status` whichever callback is set.
  void Fail(const absl::Status& status);
};

class WaitRegistry {
 public:
  // `capacity`: pending requests at most (ServerConfig::max_pending_proposals).
  explicit WaitRegistry(size_t capacity) : capacity_(capacity) {}

  // Registers `w` under `id`, due at `deadline_ms`. False (and `w` untouched) when `capacity`
  // requests are already pending.
  bool Register(uint64_t id, int64_t deadline_ms, Waiter& w);
  // Removes and returns the waiter of `id` (nullopt: answered, timed out, or never registered).
  std::optional<Waiter> Take(uint64_t id);
  bool Contains(uint64_t id) const;
  // The entry of `id` is committed and being applied: from now on it is answered with its result,
  // never with "request timed out" (a long apply, e.g. a DeleteRange of 400k keys, must not turn
  // a write that succeeds into a timeout). No-op for an unknown id.
  void Pin(uint64_t id);
  // Requests pending now (etcd_server_proposals_pending).
  size_t size() const;
  // Removes and returns every waiter whose deadline is at or before `now_ms`.
  std::vector<Waiter> Expire(int64_t now_ms);
  // Removes and returns every waiter.
  std::vector<Waiter> TakeAll();

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  // (deadline, id) in registration order; deadlines grow with it (one timeout for all).
  std::deque<std::pair<int64_t, uint64_t>> deadlines_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cairn::etcdserver
