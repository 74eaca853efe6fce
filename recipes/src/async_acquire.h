// The queue wait of Mutex::LockAsync and Election::CampaignAsync without a blocked thread: each
// step is started from the completion callback of the one before (client threads), and a wait
// for a deletion is a watch callback. Not installed.
#pragma once

#include <memory>
#include <string>

#include "cairn/client.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes::internal {

// Completes with OK once no key under `prefix` has a create revision below `my_revision`
// (etcd's waitDeletes): finds the newest older key, watches it until it is deleted, looks again.
// Errors: CANCELLED once call.cancel is canceled; the session's end status once it ends; the
// server's errors. call's deadline bounds each RPC, not the wait (cancel the token for that).
Future<bool> WaitPredecessorsGoneAsync(std::shared_ptr<Session> session, std::string prefix,
                                       Revision my_revision, const CallOptions& call);

// Puts `key` = `value` on the session's lease unless it exists (when it does and update_value is
// set, sets its value if it differs, guarded by its create revision), waits as
// WaitPredecessorsGoneAsync, then re-checks that the key is still the one created, on the
// session's lease (else the session's end status, or kLeaseLost). Completes with the grant
// (header: of the re-check). On an error after the key was created by this call, the key is
// deleted in the background (guarded by its create revision). The create itself is not
// canceled by call.cancel, so its outcome is always known.
Future<Grant> AcquireAsync(std::shared_ptr<Session> session, std::string key, std::string prefix,
                           std::string value, bool update_value, const CallOptions& call);

}  // namespace cairn::recipes::internal
