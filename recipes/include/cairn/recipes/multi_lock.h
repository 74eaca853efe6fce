// MultiLock: several Mutexes taken together, all or none (Curator's InterProcessMultiLock).
//
// Lock() takes the named locks one by one in sorted name order (so two MultiLocks over
// overlapping sets cannot deadlock) and, if any of them fails (deadline, cancel, lost session),
// releases the ones it took and returns that error. Each lock is an ordinary Mutex in etcd's
// layout, so it also excludes single Mutexes and `etcdctl lock` on any of the names.
//
// Guards() returns one Compare per lock: add them all to a Txn to make it apply only while
// every lock is still held. A lost session loses all the locks.
//
// Thread-compatible (calls must not overlap, an async one until its future completes).
// Fiber-aware.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/recipes/async.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

class MultiLock {
 public:
  // Duplicate names are merged. An empty list or an empty name is reported by the calls
  // (INVALID_ARGUMENT). `session` must not be null.
  MultiLock(std::shared_ptr<Session> session, std::vector<std::string> names);

  // Takes every lock; `call` bounds the whole wait. Errors as Mutex::Lock. On an error the locks
  // taken and the waiting key are removed before it is reported.
  absl::StatusOr<std::vector<Grant>> Lock(const CallOptions& call = {});
  // Lock's async form, holding no thread while it waits (each lock is a Mutex::LockAsync started
  // from the completion of the one before; see async.h). Canceling the future or call.cancel
  // cancels it. This object must outlive the future's completion.
  Future<std::vector<Grant>> LockAsync(const CallOptions& call = {});
  // Releases every lock held (FAILED_PRECONDITION when none); returns the first error.
  absl::Status Unlock(const CallOptions& call = {});
  // Unlock() without blocking any thread: one Mutex::UnlockAsync after another, in reverse order.
  // This object must outlive the future's completion.
  Future<Completed> UnlockAsync(const CallOptions& call = {});
  // One guard per held lock.
  std::vector<Compare> Guards() const;
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<Mutex>> mutexes_;
  bool held_ = false;
};

}  // namespace cairn::recipes
