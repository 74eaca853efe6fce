// The gateway's route table: grpc-gateway's paths (all POST) to the etcd v3 gRPC methods, as
// etcd's rpc.proto, v3lock.proto and v3election.proto declare them (google.api.http) and
// etcd 3.4 serves them: every path under /v3/ and again under /v3beta/ (docs/gateway.md).
// Pure data, thread-safe.
#pragma once

#include <string_view>

namespace cairn::api::gateway {

enum class CallKind {
  kUnary,
  kServerStream,  // one request, a stream of responses (Snapshot, Observe)
  kBidiStream,    // requests and responses both streamed (Watch, LeaseKeepAlive)
};

struct Route {
  std::string_view path;     // after the version prefix: "/kv/range"
  std::string_view service;  // full protobuf service name: "etcdserverpb.KV"
  std::string_view method;   // "Range"
  CallKind kind;
};

// The route of a request target ("/v3/kv/range", "/v3beta/kv/range"; a query string is ignored),
// or null when no route matches.
const Route* FindRoute(std::string_view target);

}  // namespace cairn::api::gateway
