// Server-side recipes: v3lockpb.Lock and v3electionpb.Election, run on the recipes library
// (recipes::Mutex, recipes::Election) through an in-process client whose channel is this
// server's own gRPC server, so every step of a recipe passes the same services and request gate
// as any client's call. As etcd's v3lock/v3election servers (which use Go's concurrency package
// the same way):
//  - keys are `<name>/<lease id in hex>` on the caller's lease; the oldest create revision holds
//    (so `etcdctl lock`/`etcdctl elect` and Go-client mutexes and elections on the same name
//    exclude each other); the returned key's create revision is a fencing token;
//  - the caller's lease is ADOPTED (recipes::SessionOptions keep_alive = false,
//    revoke_on_close = false): the server neither keeps it alive nor revokes it;
//  - errors of the recipe's steps reach the caller as etcd's servers pass on those of their
//    embedded client: code Unknown, the same message (an unknown lease: Unknown "etcdserver:
//    requested lease not found");
//  - Lock re-checks, after waiting, that the caller's key (hence its lease) is still there (Jepsen
//    found etcd's did not), so a lock is never handed to a caller whose lease expired while it
//    waited: the same "etcdserver: requested lease not found";
//  - a caller that cancels (disconnect, deadline) while waiting ends its call at once with
//    CANCELLED, and the key its call created is deleted;
//  - election errors are etcd's (code Unknown): "election: not leader", "election: no leader",
//    "\"leader\" field must be provided".
//  - auth: etcd runs these calls as their caller over KV, so the caller needs the key permissions
//    of the recipe's requests (write on "<name>/<lease hex>" and read on "<name>/" to lock or
//    campaign; read on "<name>/" for Leader and Observe; write on the key for Unlock, Proclaim,
//    Resign): checked once at the call's start (auth_gate.h), refusals passed on as code
//    Unknown with etcd's message. The recipe's own steps then carry the member's internal token.
// No thread blocks and none is started per call: each call is a chain of the recipes' async
// steps on the in-process client's threads (docs/threading.md). Every call is admitted by the
// gate first; at most kMaxRecipeCalls are pending at once; Stop() ends every pending call with
// "etcdserver: server stopped".
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cairn/client.h"
#include "cairn/recipes/session.h"
#include "server/api/gate.h"
#include "server/auth/auth_store.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace cairn::api {

// Lock, Campaign and Observe calls pending at once (each holds a watch of the in-process
// client); beyond, a call fails with "etcdserver: too many requests".
inline constexpr size_t kMaxRecipeCalls = 1024;

// The in-process client of the recipe services and their calls in flight. Thread-safe.
class RecipeHost {
 public:
  RecipeHost() = default;
  ~RecipeHost() { Stop(); }
  RecipeHost(const RecipeHost&) = delete;
  RecipeHost& operator=(const RecipeHost&) = delete;

  // Creates the in-process client on `channel` (the started gRPC server's InProcessChannel).
  // Its calls carry `internal_token` (AuthStore::internal_token): the services check each
  // caller's permissions themselves (auth_gate.h) before a recipe runs.
  absl::Status Start(std::shared_ptr<grpc::Channel> channel, const std::string& internal_token)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Refuses new calls, ends every pending one (each call's `stop`), then destroys the client
  // (its streams end). Call before the gRPC server shuts down: a pending call left unfinished
  // would hold up the server's shutdown. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Registers a pending call; `stop` ends it (it must not block). Returns its id (> 0), or the
  // error the call must fail with: "etcdserver: server stopped" when stopped, "etcdserver: too
  // many requests" when kMaxRecipeCalls calls are pending.
  absl::StatusOr<uint64_t> Add(std::function<void()> stop) ABSL_LOCKS_EXCLUDED(mu_);
  void Remove(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs `fn` now if the client exists, else when Start creates it (a call may arrive between
  // the gRPC server's start and Start); drops it once stopped (Stop ends the registered calls).
  void WhenStarted(std::function<void()> fn) ABSL_LOCKS_EXCLUDED(mu_);

  // A session on the caller's lease (adopted, not kept alive, not revoked: no RPC), or the
  // client's Kv/Watch handles; "etcdserver: server stopped" when not running.
  absl::StatusOr<std::shared_ptr<recipes::Session>> AdoptLease(int64_t lease)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Kv> kv() ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<WatchClient> watch() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::unique_ptr<Client> client_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::function<void()>> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> deferred_ ABSL_GUARDED_BY(mu_);  // until Start
};

class LockService final : public v3lockpb::Lock::CallbackService {
 public:
  LockService(RecipeHost* host, RequestGate* gate, auth::AuthStore* auth)
      : host_(host), gate_(gate), auth_(auth) {}
  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* ctx, const v3lockpb::LockRequest* req,
                                 v3lockpb::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* ctx,
                                   const v3lockpb::UnlockRequest* req,
                                   v3lockpb::UnlockResponse* resp) override;

 private:
  RecipeHost* host_;
  RequestGate* gate_;
  auth::AuthStore* auth_;
};

class ElectionService final : public v3electionpb::Election::CallbackService {
 public:
  ElectionService(RecipeHost* host, RequestGate* gate, auth::AuthStore* auth)
      : host_(host), gate_(gate), auth_(auth) {}
  grpc::ServerUnaryReactor* Campaign(grpc::CallbackServerContext* ctx,
                                     const v3electionpb::CampaignRequest* req,
                                     v3electionpb::CampaignResponse* resp) override;
  grpc::ServerUnaryReactor* Proclaim(grpc::CallbackServerContext* ctx,
                                     const v3electionpb::ProclaimRequest* req,
                                     v3electionpb::ProclaimResponse* resp) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* ctx,
                                   const v3electionpb::LeaderRequest* req,
                                   v3electionpb::LeaderResponse* resp) override;
  // Streams the leader's key-value each time the leadership or the leader's value changes, until
  // the client goes away (then OK, as etcd).
  grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* Observe(
      grpc::CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* ctx,
                                   const v3electionpb::ResignRequest* req,
                                   v3electionpb::ResignResponse* resp) override;

 private:
  RecipeHost* host_;
  RequestGate* gate_;
  auth::AuthStore* auth_;
};

}  // namespace cairn::api
