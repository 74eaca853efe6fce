#include "server/api/metrics_text.h"

#include <string_view>

#include "server/base/errors.h"
#include "server/base/metrics.h"

namespace cairn::api {
namespace {

struct GrpcName {
  std::string_view service;
  std::string_view type;
};

// The gRPC service and stream type of each method, as go-grpc-prometheus labels them.
GrpcName GrpcNameOf(Method m) {
  switch (m) {
    case Method::kRange:
    case Method::kPut:
    case Method::kDeleteRange:
    case Method::kTxn:
    case Method::kCompact:
      return {"etcdserverpb.KV", "unary"};
    case Method::kLeaseKeepAlive:
      return {"etcdserverpb.Lease", "bidi_stream"};
    case Method::kLeaseGrant:
    case Method::kLeaseRevoke:
    case Method::kLeaseTimeToLive:
    case Method::kLeaseLeases:
      return {"etcdserverpb.Lease", "unary"};
    case Method::kWatch:
      return {"etcdserverpb.Watch", "bidi_stream"};
    case Method::kMemberList:
    case Method::kMemberAdd:
    case Method::kMemberRemove:
    case Method::kMemberUpdate:
    case Method::kMemberPromote:
      return {"etcdserverpb.Cluster", "unary"};
    case Method::kStatus:
    case Method::kMoveLeader:
    case Method::kAlarm:
    case Method::kDefragment:
    case Method::kHash:
    case Method::kHashKV:
      return {"etcdserverpb.Maintenance", "unary"};
    case Method::kSnapshot:
      return {"etcdserverpb.Maintenance", "server_stream"};
    case Method::kAuthEnable:
    case Method::kAuthDisable:
    case Method::kAuthStatus:
    case Method::kAuthenticate:
    case Method::kUserAdd:
    case Method::kUserGet:
    case Method::kUserList:
    case Method::kUserDelete:
    case Method::kUserChangePassword:
    case Method::kUserGrantRole:
    case Method::kUserRevokeRole:
    case Method::kRoleAdd:
    case Method::kRoleGet:
    case Method::kRoleList:
    case Method::kRoleDelete:
    case Method::kRoleGrantPermission:
    case Method::kRoleRevokePermission:
      return {"etcdserverpb.Auth", "unary"};
    case Method::kLock:
    case Method::kUnlock:
      return {"v3lockpb.Lock", "unary"};
    case Method::kObserve:
      return {"v3electionpb.Election", "server_stream"};
    case Method::kCampaign:
    case Method::kProclaim:
    case Method::kLeader:
    case Method::kResign:
    case Method::kCount:
      break;
  }
  return {"v3electionpb.Election", "unary"};
}

// grpc-go's names of the codes (codes.Code.String()).
std::string_view CodeName(absl::StatusCode code) {
  static constexpr std::string_view kNames[] = {
      "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated",
  };
  size_t i = static_cast<size_t>(code);
  return i < std::size(kNames) ? kNames[i] : "Unknown";
}

base::MetricLabels Labels(Method m) {
  GrpcName g = GrpcNameOf(m);
  return {{"grpc_method", std::string(MethodName(m))},
          {"grpc_service", std::string(g.service)},
          {"grpc_type", std::string(g.type)}};
}

void CollectStarted(const RequestGate& gate, std::vector<base::MetricsRegistry::Sample>* out) {
  for (size_t i = 0; i < static_cast<size_t>(Method::kCount); ++i) {
    Method m = static_cast<Method>(i);
    RequestGate::MethodStats s = gate.Stats(m);
    // A call the gate refused was started too (and handled with the refusal's code).
    out->push_back({Labels(m), static_cast<double>(s.admitted + s.refused)});
  }
}

void CollectHandled(const RequestGate& gate, std::vector<base::MetricsRegistry::Sample>* out) {
  for (size_t i = 0; i < static_cast<size_t>(Method::kCount); ++i) {
    Method m = static_cast<Method>(i);
    RequestGate::MethodStats s = gate.Stats(m);
    std::map<absl::StatusCode, uint64_t> by_code = s.failed;
    uint64_t failed = 0;
    for (const auto& [code, n] : s.failed) failed += n;
    by_code[absl::StatusCode::kOk] = s.finished - failed;
    // A call the gate refused (server stopped, NOSPACE, CORRUPT) was handled with its code.
    for (const auto& [code, n] : s.refused_by_code) by_code[code] += n;
    for (const auto& [code, n] : by_code) {
      if (n == 0 && code != absl::StatusCode::kOk) continue;
      base::MetricLabels labels = Labels(m);
      labels.insert(labels.begin(), {"grpc_code", std::string(CodeName(code))});
      out->push_back({std::move(labels), static_cast<double>(n)});
    }
  }
}

}  // namespace

std::string GateMetricsText(const RequestGate& gate) {
  base::MetricsRegistry r;
  r.AddCollector("grpc_server_started_total", "Total number of RPCs started on the server.",
                 base::MetricsRegistry::Type::kCounter,
                 [&gate](auto* out) { CollectStarted(gate, out); });
  r.AddCollector("grpc_server_handled_total",
                 "Total number of RPCs completed on the server, regardless of success or failure.",
                 base::MetricsRegistry::Type::kCounter,
                 [&gate](auto* out) { CollectHandled(gate, out); });
  r.AddCallbackGauge("cairn_requests_in_flight", "Client requests admitted and not yet answered.",
                     {}, [&gate] {
                       int64_t n = 0;
                       for (size_t i = 0; i < static_cast<size_t>(Method::kCount); ++i) {
                         n += gate.Stats(static_cast<Method>(i)).in_flight();
                       }
                       return static_cast<double>(n);
                     });
  return r.RenderPrometheusText();
}

std::string MetricsText(etcdserver::Server* server, const RequestGate* gate) {
  std::string text = server->metrics().RenderPrometheusText();
  if (gate != nullptr) text += GateMetricsText(*gate);
  return text;
}

}  // namespace cairn::api
