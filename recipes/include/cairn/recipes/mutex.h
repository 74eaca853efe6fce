// Mutex: a fair, session-bound distributed lock in etcd's concurrency key layout, so a Cairn
// Mutex, a Go concurrency.Mutex and `etcdctl lock NAME` on the same name exclude each other.
//
// Key layout: a waiter/owner key "<name>/<lease id in lower-case hex>" (Go's "%x") attached to
// the session's lease. The owner is the key with the smallest create revision under "<name>/";
// every other contender waits for the deletion of the key created just before its own (one
// watch, no polling, no thundering herd), so the lock is granted in FIFO order.
//
// Fencing: a grant carries the owner key's create revision as a fencing token, strictly
// increasing across successive owners of the same name, and Guard(): a Compare to add to any Txn
// that must apply only while the lock is still held (it fails once the key is gone: after
// Unlock, lease expiry or revocation).
//
// A lost session means the lock is lost: the server deletes the key when the lease expires, and
// another contender may own the lock at once. Lock() re-checks after waiting that its key still
// exists with the session's lease and fails with kLeaseLost otherwise; a holder must use Guard()
// (or watch Session::Done()) to protect writes made later.
//
// Thread-compatible: Lock/TryLock/Unlock on one Mutex object must not overlap; grant() and key()
// may be called from any thread. Several Mutex objects may share one Session. Two Mutex objects
// of the same session and name share one key (as in Go): the second Lock succeeds at once.
// Blocking calls are fiber-aware.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/client.h"
#include "cairn/recipes/async.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

// Ownership of a lock or a leadership, with its fencing token.
struct Grant {
  std::string key;             // the owner key
  Revision fencing_token = 0;  // the owner key's create revision
  LeaseId lease = 0;
  ResponseHeader header;  // the header of the response that established ownership

  // CreateRevision(key) == fencing_token: true only while this grant is held.
  Compare Guard() const { return Cmp::CreateRevision(key) == fencing_token; }
};

class Mutex {
 public:
  // `name` is the lock's prefix without the trailing '/' (as given to `etcdctl lock`). An empty
  // name is reported by the calls (INVALID_ARGUMENT). `session` must not be null.
  Mutex(std::shared_ptr<Session> session, std::string name);

  // Waits until the lock is held. `call` bounds the whole wait: deadline and/or timeout (unset:
  // wait without limit) and cancel token. Errors: INVALID_ARGUMENT (empty name);
  // FAILED_PRECONDITION when this object already holds the lock or the session was closed;
  // the session's loss status (kLeaseLost / LEASE_NOT_FOUND) when it is lost before or while
  // waiting, or the key vanished; DEADLINE_EXCEEDED / CANCELLED; server errors. On any error
  // the waiter key this call created is removed (best effort), so no one waits behind it.
  absl::StatusOr<Grant> Lock(const CallOptions& call = {});
  // Lock() without blocking any thread: the steps run on the client's callback threads and the
  // future completes on one of them. Errors as Lock(), except that call's deadline bounds each
  // RPC but not the wait for the older keys: the wait ends on call.cancel (CANCELLED) or the
  // session's end. This object must outlive the future's completion, and no other
  // Lock/TryLock/Unlock on it may overlap.
  Future<Grant> LockAsync(const CallOptions& call = {});

  // One attempt without waiting: the grant, or nullopt when another session holds the lock
  // (this call's key is then removed). Errors as Lock.
  absl::StatusOr<std::optional<Grant>> TryLock(const CallOptions& call = {});
  // TryLock() without blocking any thread: one Txn (and the removal of the key it created when the
  // lock is taken). This object must outlive the future's completion.
  Future<std::optional<Grant>> TryLockAsync(const CallOptions& call = {});

  // Releases the lock by deleting the owner key if it is still the one granted (guarded by
  // the fencing token). FAILED_PRECONDITION when this object does not hold the lock. A lock
  // lost meanwhile is not an error (nothing is deleted).
  absl::Status Unlock(const CallOptions& call = {});
  // Unlock() without blocking any thread (the delete's completion clears the grant).
  Future<Completed> UnlockAsync(const CallOptions& call = {});

  // The grant while this object believes it holds the lock (it may have been lost since; use
  // Guard() for safety).
  std::optional<Grant> grant() const;
  // "<name>/<lease hex>".
  std::string key() const { return key_; }
  const std::string& name() const { return name_; }

 private:
  absl::StatusOr<std::optional<Grant>> Acquire(bool wait, const CallOptions& call);

  std::shared_ptr<Session> session_;
  std::string name_;
  std::string prefix_;
  std::string key_;
  mutable std::mutex mu_;
  std::optional<Grant> grant_;
};

}  // namespace cairn::recipes
