// The queue wait of Mutex::LockAsync and Election::CampaignAsync without a blocked thread: each
// step is started from the completion callback of the one before (client threads), and a wait
// for a deletion is a watch callback. Not installed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cairn/client.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes::internal {

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

}  // namespace cairn::recipes::internal
