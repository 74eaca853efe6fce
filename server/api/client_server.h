// ClientServer: the listeners for client URLs (http:// or https://host:port; port 0 picks a free
// port), each serving gRPC and HTTP/1.1 (the JSON gateway, /health, /version, /metrics: gateway/)
// on one port, and the in-process client (on the server's InProcessChannel) the lock and election
// services run their recipes on.
// Not thread-safe: Start and Shutdown from one thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/server.h>

#include "absl/status/statusor.h"
#include "server/api/auth_service.h"
#include "server/api/gate.h"
#include "server/api/gateway/http_server.h"
#include "server/api/gateway/listener.h"
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

  // Before Start: what /metrics prints (Prometheus text; by default the gate's counters,
  // GateMetricsText in metrics_text.h) and which alarms /health reports (by default none).
  void set_metrics_renderer(std::function<std::string()> render) { metrics_ = std::move(render); }
  void set_alarm_source(std::function<std::vector<std::string>()> alarms) {
    alarms_ = std::move(alarms);
  }
  // Before Start: false makes the client URLs serve gRPC only (etcd does so when
  // --listen-client-http-urls is given).
  void set_http_on_client_urls(bool on) { http_on_client_urls_ = on; }
  // After Start: serves HTTP only on `urls` (--listen-client-http-urls), or, with
  // `metrics_only`, /metrics and /health only (--listen-metrics-urls). Returns the bound
  // "host:port" of each.
  absl::StatusOr<std::vector<std::string>> ServeHttpOnly(const std::vector<std::string>& urls,
                                                         bool metrics_only);

  // The request gate every client call and stream passes (per-method counters for tests and,
  // later, /metrics).
  const RequestGate& gate() const { return gate_; }

 private:
  gateway::HttpOptions HttpOptions(bool metrics_only);

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
  // The HTTP side (gateway/): stopped before the gRPC server, whose services it calls.
  std::function<std::string()> metrics_;
  std::function<std::vector<std::string>()> alarms_;
  bool http_on_client_urls_ = true;
  std::unique_ptr<gateway::HttpServer> http_;
  std::unique_ptr<gateway::HttpServer> metrics_http_;
  std::shared_ptr<gateway::TlsContext> tls_;  // https client URLs' gateway side
  std::vector<std::unique_ptr<gateway::Listener>> listeners_;
};

}  // namespace cairn::api
