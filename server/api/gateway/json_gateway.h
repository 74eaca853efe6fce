// JsonGateway: etcd's gRPC-gateway, generically. A request on a route of routes.h is decoded from
// proto3 JSON into the method's request message (found by name in the generated descriptor
// pool), sent to cairn's own gRPC services over the server's in-process channel with the
// `Authorization` header as the `token` metadata, and the answer is encoded back as etcd 3.4's
// gateway writes it: original proto field names, defaults omitted, bytes base64, 64-bit integers
// as strings; streams as newline-delimited {"result":...} objects. Going through the gRPC
// services means the request gate, validation and auth apply as to any gRPC client.
// Errors: {"error":msg,"message":msg,"code":grpc_code} with grpc-gateway's HTTP status
// (docs/gateway.md).
//
// Thread safety: thread-safe; Serve blocks the calling (connection) thread for the call.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>

#include "server/api/gateway/connection.h"
#include "server/api/gateway/routes.h"

namespace cairn::api::gateway {

class ObjectStream;
class StreamOut;

class JsonGateway {
 public:
  // `stopping` (outliving this object) set true makes every pending call cancel soon.
  // `body_bytes_max`: the largest request object of a streamed body (HttpBodyBytesMax).
  // `identity_key` goes with a TLS client's verified certificate CN (HttpOptions::identity_key).
  JsonGateway(std::shared_ptr<grpc::Channel> channel, size_t body_bytes_max,
              const std::atomic<bool>* stopping, std::string identity_key = "");

  // Answers `request` (a POST on `route`) on `conn`. Returns false when the connection must be
  // closed afterwards (a stream ended, the peer left, or a write failed). For a bidi stream
  // whose body `conn` streams (Connection::streaming_body), the requests are read as they come.
  bool Serve(const Route& route, const Request& request, Connection* conn);

 private:
  bool ServeUnary(const Route& route, const Request& request, Connection* conn);
  // Waits for the streamed body's first request (or its end). ABORTED (empty message): the peer
  // left or went silent; other errors are answered.
  grpc::Status ReadFirstRequest(Connection* conn, const google::protobuf::Message& prototype,
                                ObjectStream* objects,
                                std::vector<std::unique_ptr<google::protobuf::Message>>* out);
  // Runs a stream call: `requests` first, then (when `body` is given) the body's later requests
  // as they arrive; the responses go to `out`. Returns whether the connection stays open.
  bool RunStream(const Route& route, const google::protobuf::MethodDescriptor& method,
                 std::vector<std::unique_ptr<google::protobuf::Message>> requests,
                 ObjectStream* body, grpc::ClientContext* ctx, Connection* conn, StreamOut* out);

  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  const size_t body_bytes_max_;
  const std::atomic<bool>* stopping_;
  const std::string identity_key_;
};

// The metadata that carries a TLS client's verified certificate CN from the gateway to the gRPC
// services over the in-process channel, and the key that vouches for it (auth_gate.cc).
inline constexpr char kGatewayCommonNameMetadata[] = "cairn-gateway-cn";
inline constexpr char kGatewayKeyMetadata[] = "cairn-gateway-key";

// An HTTP/1.1 response with a complete body, as bytes to write.
std::string HttpResponse(unsigned status, std::string_view content_type, std::string_view body,
                         bool keep_alive);
// {"error":message,"message":message,"code":code}, as etcd's gateway writes an error.
std::string ErrorJson(int code, std::string_view message);
// grpc-gateway's HTTP status for a gRPC status code.
unsigned HttpStatusOfCode(int code);

}  // namespace cairn::api::gateway
