// Server-side recipes: v3lockpb.Lock and v3electionpb.Election, with etcd's key layout
// (`<name>/<lease id in hex>`, oldest create revision holds), so `etcdctl lock`/`etcdctl elect`
// and Go-client mutexes and elections on the same name exclude each other. The returned key's
// create revision is a fencing token. Lock re-checks, after waiting, that the caller's key and
// lease are still alive (Jepsen found etcd's did not check the lease), so a lock is never handed
// to a caller whose lease expired while it waited.
// Blocking steps run on RecipeWorkers threads (at most kMaxRecipeCalls at once; beyond that a call
// fails with "too many requests"). Errors: election ones as etcd's (code Unknown, "election: not
// leader", "election: no leader"). Thread-safe.
#pragma once

#include "server/api/gate.h"
#include "server/api/local_client.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace cairn::api {

inline constexpr size_t kMaxRecipeCalls = 1024;

class LockService final : public v3lockpb::Lock::CallbackService {
 public:
  LockService(etcdserver::Server* server, RecipeWorkers* workers, RequestGate* gate)
      : client_(server), workers_(workers), gate_(gate) {}
  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* ctx, const v3lockpb::LockRequest* req,
                                 v3lockpb::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* ctx,
                                   const v3lockpb::UnlockRequest* req,
                                   v3lockpb::UnlockResponse* resp) override;

 private:
  LocalClient client_;
  RecipeWorkers* workers_;
  RequestGate* gate_;
};

class ElectionService final : public v3electionpb::Election::CallbackService {
 public:
  ElectionService(etcdserver::Server* server, RecipeWorkers* workers, RequestGate* gate)
      : client_(server), workers_(workers), gate_(gate) {}
  grpc::ServerUnaryReactor* Campaign(grpc::CallbackServerContext* ctx,
                                     const v3electionpb::CampaignRequest* req,
                                     v3electionpb::CampaignResponse* resp) override;
  grpc::ServerUnaryReactor* Proclaim(grpc::CallbackServerContext* ctx,
                                     const v3electionpb::ProclaimRequest* req,
                                     v3electionpb::ProclaimResponse* resp) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* ctx,
                                   const v3electionpb::LeaderRequest* req,
                                   v3electionpb::LeaderResponse* resp) override;
  grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* Observe(
      grpc::CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* ctx,
                                   const v3electionpb::ResignRequest* req,
                                   v3electionpb::ResignResponse* resp) override;

 private:
  LocalClient client_;
  RecipeWorkers* workers_;
  RequestGate* gate_;
};

}  // namespace cairn::api
