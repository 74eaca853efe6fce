#include "server/api/gate_metrics.h"

#include <google/protobuf/descriptor.h>

#include <array>

#include "etcdserverpb/rpc.pb.h"
#include "v3electionpb/v3election.pb.h"
#include "v3lockpb/v3lock.pb.h"

namespace cairn::api {

namespace {

namespace pb = google::protobuf;

// go-grpc-prometheus labels codes with grpc-go's code names.
constexpr std::array<const char*, 17> kCodeNames = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

// The gRPC service declaring `method` (by etcd's name), from the generated descriptors.
const pb::MethodDescriptor* FindMethod(std::string_view method) {
  // The files declaring etcd's services, by one message of each.
  static const std::array<const pb::FileDescriptor*, 3> kFiles = {
      etcdserverpb::RangeRequest::descriptor()->file(), v3lockpb::LockRequest::descriptor()->file(),
      v3electionpb::LeaderRequest::descriptor()->file()};
  for (const auto* file : kFiles) {
    for (int i = 0; i < file->service_count(); ++i) {
      if (const auto* m = file->service(i)->FindMethodByName(std::string(method))) return m;
    }
  }
  return nullptr;
}

const char* GrpcType(const pb::MethodDescriptor* m) {
  if (m->client_streaming() && m->server_streaming()) return "bidi_stream";
  if (m->server_streaming()) return "server_stream";
  if (m->client_streaming()) return "client_stream";
  return "unary";
}

}  // namespace

std::string RenderGateMetrics(const RequestGate& gate) {
  std::string started =
      "# HELP grpc_server_started_total Total number of RPCs started on the server.\n"
      "# TYPE grpc_server_started_total counter\n";
  std::string handled =
      "# HELP grpc_server_handled_total Total number of RPCs completed on the server, "
      "regardless of success or failure.\n"
      "# TYPE grpc_server_handled_total counter\n";
  for (size_t i = 0; i < static_cast<size_t>(Method::kCount); ++i) {
    Method method = static_cast<Method>(i);
    const pb::MethodDescriptor* m = FindMethod(MethodName(method));
    if (m == nullptr) continue;
    std::string labels = std::string("grpc_type=\"") + GrpcType(m) + "\",grpc_service=\"" +
                         m->service()->full_name() + "\",grpc_method=\"" + m->name() + "\"";
    RequestGate::MethodStats stats = gate.Stats(method);
    started += "grpc_server_started_total{" + labels + "} " +
               std::to_string(stats.admitted + stats.refused) + "\n";
    // A request the gate refused (the member stopping) ended Unavailable.
    uint64_t failed = stats.refused;
    std::array<uint64_t, kCodeNames.size()> by_code{};
    by_code[static_cast<size_t>(absl::StatusCode::kUnavailable)] += stats.refused;
    for (const auto& [code, n] : stats.failed) {
      size_t c = static_cast<size_t>(code);
      if (c < by_code.size()) by_code[c] += n;
      failed += n;
    }
    uint64_t finished = stats.finished + stats.refused;
    by_code[0] = finished >= failed ? finished - failed : 0;
    for (size_t c = 0; c < by_code.size(); ++c) {
      if (by_code[c] == 0 && c != 0) continue;
      handled += "grpc_server_handled_total{" + labels + ",grpc_code=\"" + kCodeNames[c] + "\"} " +
                 std::to_string(by_code[c]) + "\n";
    }
  }
  return started + handled;
}

}  // namespace cairn::api
