// Barriers (etcd's recipes Barrier and DoubleBarrier; Curator's DistributedBarrier and
// DistributedDoubleBarrier).
//
// Barrier: one key "<name>". Hold() creates it (ALREADY_EXISTS if it is there), Release()
// deletes it, Wait() returns once it does not exist (watching it, no polling). The key is not
// bound to a lease unless a session is given, in which case it goes away with the session.
//
// DoubleBarrier: `count` participants. Enter() puts "<name>/waiters/<lease hex>" on the
// session's lease and blocks until `count` participants have entered (the one that completes
// the group puts "<name>/ready"). Leave() deletes the participant's key and blocks until every
// participant has left (the last one deletes "<name>/ready"). Waits watch a single key each
// (no polling). A participant whose session is lost drops out: its waiter key vanishes, so the
// others may wait for a participant that will never come; bound the waits with deadlines.
//
// Thread-safe for Barrier; DoubleBarrier is thread-compatible (one Enter/Leave at a time).
// Calls are fiber-aware.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/client.h"
#include "cairn/recipes/async.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

class Barrier {
 public:
  // An empty name is reported by the calls (INVALID_ARGUMENT).
  Barrier(const Client& client, std::string name)
      : kv_(client.kv()), watch_(client.watch()), name_(std::move(name)) {}
  // The held key is bound to the session's lease.
  Barrier(std::shared_ptr<Session> session, std::string name)
      : kv_(session->kv()),
        watch_(session->watch()),
        name_(std::move(name)),
        session_(std::move(session)) {}

  // Raises the barrier. ALREADY_EXISTS when it is already held.
  absl::Status Hold(const CallOptions& call = {}) const;
  // Lowers it (OK if it was not held).
  absl::Status Release(const CallOptions& call = {}) const;
  // Hold's and Release's async forms (one RPC each; no thread is blocked).
  Future<Completed> HoldAsync(const CallOptions& call = {}) const;
  Future<Completed> ReleaseAsync(const CallOptions& call = {}) const;
  // Waits until the barrier is down. DEADLINE_EXCEEDED / CANCELLED per `call` (unset: no limit).
  absl::Status Wait(const CallOptions& call = {}) const;
  // Wait's async form (see async.h): this object must outlive the future's completion.
  Future<Completed> WaitAsync(const CallOptions& call = {}) const;

 private:
  Kv kv_;
  WatchClient watch_;
  std::string name_;
  std::shared_ptr<Session> session_;
};

class DoubleBarrier {
 public:
  // count <= 0 or an empty name are reported by the calls (INVALID_ARGUMENT). `session` must not
  // be null.
  DoubleBarrier(std::shared_ptr<Session> session, std::string name, int64_t count);

  // Joins and waits until `count` participants joined. FAILED_PRECONDITION when already
  // entered or the session ended; RESOURCE_EXHAUSTED when more than `count` are in; the
  // session's loss status; DEADLINE_EXCEEDED / CANCELLED (the waiter key is then removed).
  absl::Status Enter(const CallOptions& call = {});
  // Leaves and waits until every participant left. FAILED_PRECONDITION when not entered.
  absl::Status Leave(const CallOptions& call = {});
  // Async forms, holding no thread while they wait (each step starts from the completion of the
  // one before; a wait is a watch; see async.h). Errors as Enter/Leave; a failed EnterAsync
  // removes its waiter key before it reports. This object must outlive the future's completion.
  Future<Completed> EnterAsync(const CallOptions& call = {});
  Future<Completed> LeaveAsync(const CallOptions& call = {});

 private:
  std::shared_ptr<Session> session_;
  std::string name_;
  int64_t count_;
  std::string key_;
  Revision my_rev_ = 0;
};

}  // namespace cairn::recipes
