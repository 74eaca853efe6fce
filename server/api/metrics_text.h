// MetricsText: what /metrics answers (Prometheus text format 0.0.4): the member's registry
// (etcd_server_*, etcd_disk_*, etcd_mvcc_*, etcd_network_*, process_*) and, when given, the
// request gate's per-method counters as go-grpc-prometheus names them (grpc_server_started_total,
// grpc_server_handled_total). docs/metrics.md lists every metric.
//
// Thread safety: thread-safe; `server` and `gate` must outlive the call.
#pragma once

#include <string>

#include "server/api/gate.h"
#include "server/etcdserver/server.h"

namespace cairn::api {

// The whole /metrics body. `gate` may be nullptr (no client listener yet): then no grpc_* lines.
std::string MetricsText(etcdserver::Server* server, const RequestGate* gate);

// The gate's families alone.
std::string GateMetricsText(const RequestGate& gate);

}  // namespace cairn::api
