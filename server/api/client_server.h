// ClientServer: the gRPC listener for client URLs (http://host:port; port 0 picks a free port),
// and the in-process client (on the server's InProcessChannel) the lock and election services
// run their recipes on.
// Not thread-safe: Start and Shutdown from one thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/server.h>

#include "absl/status/statusor.h"
#include "server/api/auth_service.h"
#include "server/api/gate.h"
#include "server/api/handlers.h"
#include "server/api/lease_service.h"
#include "server/api/recipe_services.h"
#include "server/api/services.h"
#include "server/api/watch_service.h"

namespace cairn::api {

class ClientServer {
 public:
  explicit ClientServer(etcdserver::Server* server);
  ~ClientServer();
  // Listens on every URL; returns the bound "host:port" of each, in order.
  absl::StatusOr<std::vector<std::string>> Start(const std::vector<std::string>& listen_urls);
  // Ends the pending lock and election calls ("etcdserver: server stopped") and closes the
  // in-process client of the recipe services, then stops accepting, lets in-flight calls finish
  // (bounded by `deadline_ms`), then cancels.
  void Shutdown(int deadline_ms);

  // The request gate every client call and stream passes (per-method counters for tests and,
  // later, /metrics).
  const RequestGate& gate() const { return gate_; }

 private:
  etcdserver::Server* server_;
  RequestGate gate_;
  Handlers handlers_;
  KvService kv_;
  MaintenanceService maintenance_;
  ClusterService cluster_;
  WatchService watch_;
  LeaseService lease_;
  AuthHandlers auth_handlers_;
  AuthService auth_;
  RecipeHost recipe_host_;  // started after the gRPC server, stopped before it
  LockService lock_;
  ElectionService election_;
  std::unique_ptr<grpc::Server> grpc_;
};

}  // namespace cairn::api
