// Session: a lease kept alive by the client, the liveness every other recipe hangs on (etcd's
// concurrency.Session).
//
//   cairn::recipes::SessionOptions options;
//   options.ttl_seconds = 10;
//   auto session = cairn::recipes::Session::Create(*client, options);
//   if (!session.ok()) return session.status();
//   cairn::recipes::Mutex mu(*session, "jobs/lock");
//
// A session grants a lease of `ttl_seconds` (or adopts an existing one) and hands it to the
// client's keeper (LeaseClient::KeepAlive), which renews it every TTL/3. Keys that recipes create
// for this session are attached to the lease, so they vanish when the session ends.
//
// The session ENDS exactly once, for one of these reasons (status() afterwards):
//  - lost: the lease expired or was revoked elsewhere, or no renewal was confirmed within the
//    TTL (the keeper's loss report: kLeaseLost / LEASE_NOT_FOUND, see cairn/lease.h). Every key
//    of the session may already be gone, so every lock, leadership or permit obtained through it
//    must be treated as lost. on_lost is called.
//  - closed: Close() revoked the lease (status FAILED_PRECONDITION "session closed").
//  - orphaned: Orphan() stopped the keepalives without revoking (FAILED_PRECONDITION "session
//    orphaned"); the lease then expires after its TTL.
// Waiting recipe calls (Mutex::Lock, Election::Campaign, ...) on an ended session return at once
// with that status; they never hang on a dead session.
//
// Thread-safe: every method may be called from any thread or fiber. The Client must outlive the
// session. Destroying the last reference closes the session (revokes the lease, bounded by the
// client's default timeout) unless it already ended.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/client.h"
#include "cairn/recipes/async.h"

namespace cairn::recipes {

struct SessionOptions {
  // TTL of the granted lease, > 0 (etcd's default is 60). The server may raise a small TTL to its
  // minimum (cairn: 1.5 election timeouts).
  int64_t ttl_seconds = 60;
  // Adopt this existing lease instead of granting one (0 = grant). Its TTL is the server's.
  LeaseId lease = 0;
  // Called once when the session is lost (not on Close/Orphan), on a client thread, before Done()
  // and Wait() report the end; keep it quick.
  std::function<void(const absl::Status&)> on_lost;
  // Keep the lease alive (the default). false: the session only ADOPTS `lease` for its keys, as
  // etcd's server-side lock and election do with the caller's lease: no keepalive, no grant and
  // no existence check (Create makes no RPC and cannot fail on the server; the first write on a
  // lease that does not exist fails with LEASE_NOT_FOUND), and the session is never "lost" (it
  // cannot tell; the keys go when the owner's lease ends). lease = 0 then means "no lease": keys
  // are written without one. ttl_seconds is ignored (the ttl_seconds() accessor reports 0).
  bool keep_alive = true;
  // Revoke the lease when the session is closed or destroyed (the default). false: Close() and
  // the destructor end the session without any RPC, leaving the lease (and its keys) to its
  // owner.
  bool revoke_on_close = true;
};

// What Done() completes with: why the session ended.
struct SessionEnd {
  absl::Status reason;
};

class Session {
 public:
  // Grants (or adopts) the lease and starts the keepalive. Errors: INVALID_ARGUMENT for
  // ttl_seconds <= 0 (when granting) or a negative lease id; the server's error for the grant
  // (e.g. LEASE_NOT_FOUND for an adopted lease that does not exist), DEADLINE_EXCEEDED,
  // CANCELLED.
  static absl::StatusOr<std::shared_ptr<Session>> Create(const Client& client,
                                                         SessionOptions options = {},
                                                         const CallOptions& call = {});
  // The same, asynchronously (argument errors give a ready future).
  static Future<std::shared_ptr<Session>> CreateAsync(const Client& client,
                                                      SessionOptions options = {},
                                                      const CallOptions& call = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  LeaseId lease() const;
  // The TTL granted by the server (adopted leases: the TTL of the first confirmed renewal, 0
  // before it).
  int64_t ttl_seconds() const;

  // Handles of the session's client (cheap copies).
  const Kv& kv() const;
  const WatchClient& watch() const;
  const LeaseClient& lease_client() const;

  // OK while the session lives; the end reason afterwards.
  absl::Status status() const;
  bool alive() const { return status().ok(); }

  // A future completed once with the end reason when the session ends (at once if it has).
  // Each call returns a new future.
  Future<SessionEnd> Done() const;
  // Waits until the session ends; returns the end reason, or DEADLINE_EXCEEDED / CANCELLED when
  // `call`'s deadline passes or its token is canceled first. Fiber-aware.
  absl::Status Wait(const CallOptions& call = {}) const;

  // Stops the keepalive and revokes the lease (the session's keys are deleted by the server;
  // not with revoke_on_close = false). The session ends with FAILED_PRECONDITION "session
  // closed". Idempotent: later calls return OK. Returns the revoke's error if it failed (the
  // session is still ended; the lease then expires after its TTL).
  absl::Status Close(const CallOptions& call = {});
  // Close's async form: stops the keepalive and ends the session at once, then completes once the
  // revoke does (no thread is blocked). The session object must outlive the future's completion.
  Future<Completed> CloseAsync(const CallOptions& call = {});
  // Stops the keepalive without revoking: the keys live on until the lease's TTL runs out.
  void Orphan();

  // Registers `cb`, called once with the end reason when the session ends (on the thread that
  // ends it; keep it quick, do not call back into blocking calls). If the session already ended,
  // `cb` runs inline and 0 is returned. Otherwise returns an id for RemoveEndListener.
  uint64_t AddEndListener(std::function<void(const absl::Status&)> cb) const;
  void RemoveEndListener(uint64_t id) const;

  struct State;  // internal

 private:
  Session(Kv kv, WatchClient watch, LeaseClient lease, std::shared_ptr<State> state);
  static absl::StatusOr<std::shared_ptr<Session>> Start(
      Kv kv, WatchClient watch, LeaseClient lease, LeaseId id, int64_t ttl,
      std::function<void(const absl::Status&)> on_lost, bool keep_alive, bool revoke_on_close);
  Kv kv_;
  WatchClient watch_;
  LeaseClient lease_client_;
  std::shared_ptr<State> state_;
};

}  // namespace cairn::recipes
