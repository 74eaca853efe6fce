// Helpers shared by the recipes (not installed).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "cairn/client.h"
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

// Waits until no key under `prefix` has a create revision below `my_revision`: repeatedly finds
// the last such key and waits for its deletion (etcd's waitDeletes). Errors as WaitForChange and
// the server's.
absl::Status WaitPredecessorsGone(const Session& session, const std::string& prefix,
                                  Revision my_revision, const CallOptions& call,
                                  Clock::time_point deadline);

// Deletes `key` if its create revision is still `create_revision` (best effort, own deadline).
void DeleteIfCreated(const Kv& kv, const std::string& key, Revision create_revision);

// Fails when the session has ended: its status (closed/orphaned: FAILED_PRECONDITION; lost: the
// keeper's loss status).
absl::Status CheckSession(const Session& session);

}  // namespace cairn::recipes::internal

namespace cairn::recipes::internal {

// Puts `key` on the session's lease if absent, then (wait) waits until no key under
// `wait_prefix` older than it exists, or (!wait) returns nullopt if one exists. Re-checks the
// own key after waiting. On failure or nullopt the key this call created is removed.
absl::StatusOr<std::optional<Grant>> AcquireQueued(const Session& session, const std::string& key,
                                                   const std::string& wait_prefix, bool wait,
                                                   const CallOptions& call);

}  // namespace cairn::recipes::internal
