// etcd's answer to a request that is not valid protobuf.
//
// gRPC C++'s callback API answers a unary request it cannot parse with UNIMPLEMENTED and no
// message (its handler treats a failed parse like a missing method); etcd, on grpc-go, answers
// INTERNAL "grpc: error unmarshalling request: ...". This interceptor, installed on the client
// server for unary RPCs, notices the failed parse (no received message) and rewrites the status to
// INTERNAL with etcd's message prefix (the Go proto library's detail that follows it in etcd is not
// reproduced). Tested by tests/reliability/bad_inputs_test.cc. Thread-safe (one per call).
#pragma once

#include <grpcpp/support/server_interceptor.h>

namespace cairn::api {

class DecodeErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace cairn::api
