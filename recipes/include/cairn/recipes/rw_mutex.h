// RWMutex: a fair readers-writer lock (etcd's recipes RWMutex; Curator's
// InterProcessReadWriteLock, without re-entrance).
//
// Key layout: readers put "<name>/read/<lease hex>", writers "<name>/write/<lease hex>", on
// the session's lease. A reader holds the lock once no writer key older than its own exists
// (it waits for the deletion of the newest such writer key); a writer holds it once no key at
// all (reader or writer) older than its own exists (it waits for the newest older key). So
// requests are served in arrival order, readers arriving together share the lock, and a
// waiting writer is not starved by later readers. Each waiter watches one key (no herd).
//
// Fencing: grants carry the key's create revision and Guard(). A lost session loses the lock.
//
// Thread-compatible: calls on one object must not overlap. Fiber-aware. A session must not ask
// for the write lock while it holds the read lock of the same name (through another object):
// the writer would wait for its own older read key until the deadline.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/recipes/async.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

class RWMutex {
 public:
  // An empty name is reported by the calls (INVALID_ARGUMENT). `session` must not be null.
  RWMutex(std::shared_ptr<Session> session, std::string name);

  // Shared lock. Errors as Mutex::Lock (FAILED_PRECONDITION when this object holds a lock).
  absl::StatusOr<Grant> RLock(const CallOptions& call = {});
  // Exclusive lock. Errors as Mutex::Lock.
  absl::StatusOr<Grant> Lock(const CallOptions& call = {});
  // Async forms (see async.h): this object must outlive the future's completion.
  Future<Grant> RLockAsync(const CallOptions& call = {});
  Future<Grant> LockAsync(const CallOptions& call = {});
  // Without waiting: nullopt when the lock is not available now.
  absl::StatusOr<std::optional<Grant>> TryRLock(const CallOptions& call = {});
  absl::StatusOr<std::optional<Grant>> TryLock(const CallOptions& call = {});
  // Releases whichever lock this object holds. FAILED_PRECONDITION when none.
  absl::Status Unlock(const CallOptions& call = {});
  // Unlock() without blocking any thread (the delete's completion clears the grant). This object
  // must outlive the future's completion.
  Future<Completed> UnlockAsync(const CallOptions& call = {});

  std::optional<Grant> grant() const;

 private:
  absl::StatusOr<std::optional<Grant>> Acquire(bool write, bool wait, const CallOptions& call);
  Future<Grant> AcquireAsync(bool write, const CallOptions& call);

  std::shared_ptr<Session> session_;
  std::string name_;
  mutable std::mutex mu_;
  std::optional<Grant> grant_;
};

}  // namespace cairn::recipes
