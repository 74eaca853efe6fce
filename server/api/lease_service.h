// The etcd Lease service. Grant and Revoke go through the log; KeepAlive renews on the member
// that runs expiry (etcd: the leader); TimeToLive and Leases read the lessor and the store.
// Not-found answers follow etcd: KeepAlive replies TTL 0, TimeToLive replies TTL -1, Revoke fails
// with "requested lease not found". Thread-safe.
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/api/handlers.h"

namespace cairn::api {

class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  explicit LeaseService(Handlers* handlers) : handlers_(handlers) {}

  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::LeaseGrantRequest* req,
                                       etcdserverpb::LeaseGrantResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseRevokeRequest* req,
                                        etcdserverpb::LeaseRevokeResponse* resp) override;
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* ctx,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) override;
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseLeasesRequest* req,
                                        etcdserverpb::LeaseLeasesResponse* resp) override;

 private:
  Handlers* handlers_;
};

}  // namespace cairn::api
