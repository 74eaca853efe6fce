// RenderGateMetrics: the request gate's per-method counters as Prometheus text (exposition
// format 0.0.4), with go-grpc-prometheus's names as etcd exports them:
//   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
//   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
// This is what /metrics serves until the full registry is plugged in
// (ClientServer::set_metrics_renderer). Thread-safe.
#pragma once

#include <string>

#include "server/api/gate.h"

namespace cairn::api {

std::string RenderGateMetrics(const RequestGate& gate);

}  // namespace cairn::api
