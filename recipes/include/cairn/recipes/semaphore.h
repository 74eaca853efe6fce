// Semaphore: `permits` holders at once, granted in arrival order (Curator's
// InterProcessSemaphoreV2, one permit per session).
//
// Key layout: "<name>/<lease id hex>" on the session's lease (the Mutex layout). The holders
// are the `permits` keys with the smallest create revisions; a contender holds a permit once
// fewer than `permits` keys older than its own exist. Once held, a permit stays held until its
// key is deleted (keys are only ever removed, never reordered). Waiting contenders watch the
// prefix for deletions: every release wakes each waiter for one count read (a herd bounded by
// the number of waiters), never polling. All participants must use the same `permits`.
//
// Fencing: the Grant's token is the key's create revision; Guard() holds while the permit does.
// A lost session loses the permit (its key goes with the lease).
//
// Thread-compatible: Acquire/TryAcquire/Release on one object must not overlap. Fiber-aware.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/recipes/async.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

class Semaphore {
 public:
  // permits <= 0 or an empty name are reported by the calls (INVALID_ARGUMENT). `session` must
  // not be null.
  Semaphore(std::shared_ptr<Session> session, std::string name, int64_t permits);

  // Waits for a permit. Errors as Mutex::Lock (FAILED_PRECONDITION when this object already
  // holds one).
  absl::StatusOr<Grant> Acquire(const CallOptions& call = {});
  // Acquire's async form (see async.h): this object must outlive the future's completion.
  Future<Grant> AcquireAsync(const CallOptions& call = {});
  // A permit if one is free now, else nullopt (no key is left behind).
  absl::StatusOr<std::optional<Grant>> TryAcquire(const CallOptions& call = {});
  // Returns the permit. FAILED_PRECONDITION when not held.
  absl::Status Release(const CallOptions& call = {});
  // Release() without blocking any thread (the delete's completion clears the grant). This
  // object must outlive the future's completion.
  Future<Completed> ReleaseAsync(const CallOptions& call = {});

  std::optional<Grant> grant() const;
  int64_t permits() const { return permits_; }

 private:
  absl::StatusOr<std::optional<Grant>> AcquireImpl(bool wait, const CallOptions& call);

  std::shared_ptr<Session> session_;
  std::string name_;
  std::string prefix_;
  std::string key_;
  int64_t permits_;
  mutable std::mutex mu_;
  std::optional<Grant> grant_;
};

}  // namespace cairn::recipes
