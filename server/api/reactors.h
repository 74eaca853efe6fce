// Helpers shared by the unary handlers of server/api. Thread-safe.
#pragma once

#include <grpcpp/support/server_callback.h>

#include "server/api/status.h"
#include "server/etcdserver/server.h"

namespace cairn::api {

// Ends a unary call at once with `status`.
inline grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx,
                                           const absl::Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

// Proposes `request`; once it is applied, `take(result)` moves the response into place (on
// success) and the call ends with the result's status. `take` runs on the applier thread.
template <typename Take>
grpc::ServerUnaryReactor* ProposeAndFinish(grpc::CallbackServerContext* ctx,
                                           etcdserver::Server* server,
                                           cairnpb::InternalRequest request, Take take) {
  auto* reactor = ctx->DefaultReactor();
  server->Propose(std::move(request), [reactor, take](mvcc::ApplyResult result) mutable {
    if (result.status.ok()) take(result);
    reactor->Finish(ToGrpc(result.status));
  });
  return reactor;
}

}  // namespace cairn::api
