// The thread-free waits of the recipes' async forms (Mutex::LockAsync, Election::CampaignAsync,
// MultiLock::LockAsync, DoubleBarrier::{Enter,Leave}Async, Queue::DequeueAsync, ...): each step
// is started from the completion callback of the one before (client threads), a wait for a change
// is a watch callback, and one process-wide timer thread ends waits at their deadlines. Not
// installed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cairn/client.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"
#include "src/internal.h"

namespace cairn::recipes::internal {

// Runs `fn` at `when` on the recipes' one timer thread (started on first use); `fn` must not
// block. Returns an id for CancelTimer.
uint64_t RunAt(Clock::time_point when, std::function<void()> fn);
// Drops a callback of RunAt that has not started (a no-op for 0 or one already run).
void CancelTimer(uint64_t id);

// Completes with OK once a watch of `key` with `opts` delivers an event or ends (e.g. compaction):
// "something changed, look again" (WaitForChange without a blocked thread). Errors: CANCELLED
// once call.cancel is canceled; DEADLINE_EXCEEDED once `deadline` passes; the session's end
// status once it ends (`session` may be null); the watch's start error.
Future<bool> WaitForChangeAsync(WatchClient watch, std::string key, WatchOptions opts,
                                const CallOptions& call, Clock::time_point deadline,
                                std::shared_ptr<const Session> session);

// `p`'s future, ended early with CANCELLED by call.cancel or by Cancel() on the returned future,
// and with DEADLINE_EXCEEDED (`deadline_message`) at call's deadline (the recipes' timer); the
// registrations are dropped once it completes. For waits that something else completes (a
// latch's thread, a cache's watch).
Future<bool> Bounded(Promise<bool> p, const CallOptions& call, std::string deadline_message);

// The options of one async recipe call: `call` with its deadline made absolute (DeadlineOf) and
// a cancel token of its own, canceled by the caller's token and by Cancel() on the future of
// `promise`. Run the returned `unlink` when the call completes (it stops listening to the
// caller's token).
template <typename T>
CallOptions OwnCall(const CallOptions& call, const Promise<T>& promise,
                    std::function<void()>* unlink) {
  CallOptions own = call;
  own.deadline = DeadlineOf(call);
  own.timeout = std::chrono::milliseconds(0);
  own.cancel = CancelToken::Make();
  CancelToken mine = own.cancel;
  promise.SetCancel([mine] { mine.Cancel(); });
  CancelToken parent = call.cancel;
  uint64_t id = parent.Register([mine] { mine.Cancel(); });
  *unlink = [parent, id] { parent.Unregister(id); };
  return own;
}

// Completes with OK once fewer than `slots` keys under `prefix` have a create revision below
// `my_revision`. With one slot (etcd's waitDeletes) it finds the newest older key, watches it
// until it is deleted, looks again; with more it watches the prefix for deletions between looks.
// Errors: CANCELLED once call.cancel is canceled; DEADLINE_EXCEEDED once call's deadline (or
// timeout, counted from this call) passes: it bounds the whole wait, not only each RPC; the
// session's end status once it ends; the server's errors.
Future<bool> WaitPredecessorsGoneAsync(std::shared_ptr<Session> session, std::string prefix,
                                       Revision my_revision, const CallOptions& call,
                                       int64_t slots = 1);

// Completes with OK once `key` does not exist (a barrier's wait): reads it, watches it until it
// is deleted, looks again. Errors as WaitPredecessorsGoneAsync, with no session to end it.
Future<bool> WaitKeyGoneAsync(Kv kv, WatchClient watch, std::string key, const CallOptions& call);

// Puts `key` = `value` on the session's lease unless it exists (when it does and update_value is
// set, sets its value if it differs, guarded by its create revision), waits as
// WaitPredecessorsGoneAsync (for fewer than `slots` older keys under `prefix`), then re-checks that
// the key is still the one created, on the session's lease (else the session's end status, or
// kLeaseLost). Completes with the grant (header: of the re-check). On an error after the key was
// created by this call, the key is deleted in the background (guarded by its create revision). The
// create itself is not canceled by call.cancel, so its outcome is always known. call's deadline
// bounds the whole call; a call that fails (deadline, cancel) removes the key it created before it
// completes.
Future<Grant> AcquireAsync(std::shared_ptr<Session> session, std::string key, std::string prefix,
                           std::string value, bool update_value, const CallOptions& call,
                           int64_t slots = 1);

// AcquireQueued without waiting, and without blocking a thread: one Txn creates `key` (or finds
// it) on the session's lease and reads the first `slots` keys under `prefix`; the grant when
// fewer than `slots` keys are older than it, else nullopt (the key this call created removed
// first). The value is "" and an existing key's value is left as it is. `what` prefixes errors.
Future<std::optional<Grant>> TryAcquireAsync(std::shared_ptr<Session> session, std::string key,
                                             std::string prefix, const CallOptions& call,
                                             const char* what, int64_t slots = 1);

}  // namespace cairn::recipes::internal
