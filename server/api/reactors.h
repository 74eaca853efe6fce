// Helpers shared by the unary handlers of server/api. Thread-safe.
#pragma once

#include <grpcpp/support/server_callback.h>

#include "server/api/auth_gate.h"
#include "server/api/handlers.h"
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

// A stream refused at its start (by the gate): it ends at once with `status`.
template <typename Req, typename Resp>
class RefusedStream final : public grpc::ServerBidiReactor<Req, Resp> {
 public:
  explicit RefusedStream(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

// Serves a unary call through `handler` of the transport-neutral Handlers: the reply leaves when
// the handler reports (gRPC owns `req` and `resp` until then).
template <typename Req, typename Resp>
grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, Handlers* handlers,
                                void (Handlers::*handler)(const Req&, Resp*, Handlers::Done),
                                const Req* req, Resp* resp) {
  auto* reactor = ctx->DefaultReactor();
  // The handler checks permissions synchronously, before any hop to another thread.
  Caller caller = CallerOf(*ctx);
  CallerScope scope(&caller);
  (handlers->*handler)(*req, resp, [reactor](absl::Status st) { reactor->Finish(ToGrpc(st)); });
  return reactor;
}

}  // namespace cairn::api
