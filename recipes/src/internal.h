// Helpers shared by the recipes (not installed).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "cairn/client.h"
#include "cairn/recipes/async.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes::internal {

// A future completed with fn(result of `f`); canceling it cancels `f`. `fn` runs on the thread
// completing `f` (a client thread): it must not block.
template <typename A, typename B>
Future<B> Map(Future<A> f, std::function<absl::StatusOr<B>(absl::StatusOr<A>)> fn) {
  Promise<B> p;
  Future<B> out = p.future();
  auto src = std::make_shared<Future<A>>(std::move(f));
  p.SetCancel([src] { src->Cancel(); });
  src->Then([p, fn = std::move(fn)](absl::StatusOr<A> r) { p.Set(fn(std::move(r))); });
  return out;
}

// The absolute deadline of `call`: the earlier of call.deadline and now + call.timeout (when
// call.timeout > 0). time_point::max() when neither is set.
Clock::time_point DeadlineOf(const CallOptions& call);

// Options for one RPC made inside a recipe call with overall deadline `deadline`: same cancel
// token and retry mode, the client's default timeout capped by `deadline`.
CallOptions RpcCall(const CallOptions& call, Clock::time_point deadline);

// Options for the RPC that creates a recipe's own key: like RpcCall but without the cancel
// token, so that canceling never leaves the key created with the outcome unknown to the caller
// (the wait after it is what cancellation interrupts, and that path removes the key).
CallOptions CreateCall(const CallOptions& call, Clock::time_point deadline);

// Lower-case hex without padding: Go's fmt.Sprintf("%x", id) as etcd's concurrency package uses.
std::string LeaseHex(LeaseId id);

// INVALID_ARGUMENT "<what>: empty name" for an empty name.
absl::Status CheckName(const std::string& name, const char* what);

// Watches `key` (with `opts`) and waits until the watch delivers any event or ends (e.g.
// compaction), the session ends (returns its status), `call`'s token is canceled (CANCELLED) or
// `deadline` passes (DEADLINE_EXCEEDED). OK means "something changed: look again".
absl::Status WaitForChange(const WatchClient& watch, const std::string& key,
                           const WatchOptions& opts, const CallOptions& call,
                           Clock::time_point deadline, const Session* session);

// The first (ascending) or last key by create revision under `prefix`, optionally only keys
// created at or before max_create_revision (> 0).
GetOptions ByCreate(bool first, Revision max_create_revision = 0);

// Deletes `key` if its create revision is still `create_revision` (best effort, own deadline).
void DeleteIfCreated(const Kv& kv, const std::string& key, Revision create_revision);

// Releases a grant: deletes its key if it is still the granted one (guarded by the fencing
// token; a grant lost meanwhile deletes nothing and is not an error). The Txn's error otherwise.
absl::Status DeleteGranted(const Kv& kv, const Grant& grant, const CallOptions& call);
// DeleteGranted's async form; `on_deleted` runs (on the completing client thread) once the Txn
// succeeded, before the future completes.
Future<Completed> DeleteGrantedAsync(const Kv& kv, const Grant& grant, const CallOptions& call,
                                     std::function<void()> on_deleted);

// Fails when the session has ended: its status (closed/orphaned: FAILED_PRECONDITION; lost: the
// keeper's loss status).
absl::Status CheckSession(const Session& session);

}  // namespace cairn::recipes::internal

namespace cairn::recipes::internal {

// The waiter of the queued recipes (Mutex, RWMutex, Semaphore, Election): "create my key on the
// session's lease, then wait until fewer than `slots` keys under `wait_prefix` were created
// before it", each waiter watching only what can let it in. Implemented in waiter.cc.
struct QueuedKey {
  std::string key;          // the waiter's own key
  std::string value;        // its value
  std::string wait_prefix;  // older keys under this prefix are ahead of us
  // The turn comes once fewer than `slots` older keys exist (1: a lock, N: N permits). With
  // slots == 1 the waiter watches only the newest older key (etcd's waitDeletes: no herd);
  // otherwise it watches the prefix for deletions.
  int64_t slots = 1;
  // The key already exists (another object of the same session): overwrite its value with
  // `value` (Election) instead of leaving it as it is.
  bool update_value = false;
};

// Puts `q.key` if absent (reuses it if the session already has it), then (wait) waits for the
// turn, or (!wait) returns nullopt if the turn has not come. After waiting, re-checks that the
// key still exists with the same create revision and lease and that the session is still alive
// (kLeaseLost / the session's status otherwise). `call` bounds the whole wait; the key's
// creation itself is not canceled (see CreateCall). On failure or nullopt the key this call
// created is removed (best effort). `what` prefixes the error messages ("mutex", ...).
absl::StatusOr<std::optional<Grant>> AcquireQueued(const Session& session, const QueuedKey& q,
                                                   bool wait, const CallOptions& call,
                                                   const char* what);

}  // namespace cairn::recipes::internal
