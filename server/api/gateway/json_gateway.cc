#include "server/api/gateway/json_gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpc/support/time.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/support/byte_buffer.h>

#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <cstdio>
#include <sstream>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "v3electionpb/v3election.pb.h"
#include "v3lockpb/v3lock.pb.h"

namespace cairn::api::gateway {

namespace pb = google::protobuf;
namespace http = boost::beast::http;

namespace {

// How long a write of a response (or of one stream message) may wait for a peer that does not
// read: past it the connection is closed (docs/limits.md, "HTTP write timeout").
constexpr int kWriteTimeoutMs = 60 * 1000;
// How often a call waiting for its answer checks whether the HTTP peer left or the server stops.
constexpr int kCancelCheckMs = 200;

const pb::MethodDescriptor* FindMethod(const Route& route) {
  // Referencing one message of each file keeps its descriptor in the generated pool.
  static const bool linked = etcdserverpb::RangeRequest::descriptor() != nullptr &&
                             v3lockpb::LockRequest::descriptor() != nullptr &&
                             v3electionpb::LeaderRequest::descriptor() != nullptr;
  (void)linked;
  std::string name = std::string(route.service) + "." + std::string(route.method);
  return pb::DescriptorPool::generated_pool()->FindMethodByName(name);
}

std::unique_ptr<pb::Message> NewMessage(const pb::Descriptor* type) {
  return std::unique_ptr<pb::Message>(
      pb::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

grpc::ByteBuffer Serialize(const pb::Message& m) {
  std::string bytes = m.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

bool Deserialize(const grpc::ByteBuffer& bb, pb::Message* m) {
  std::vector<grpc::Slice> slices;
  if (!bb.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return m->ParseFromString(bytes);
}

// etcd 3.4's gateway marshaler: jsonpb with OrigName, no EmitDefaults.
std::string ToJson(const pb::Message& m) {
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!pb::util::MessageToJsonString(m, &out, options).ok()) out = "{}";
  return out;
}

// jsonpb, as etcd's gateway unmarshals: unknown fields are ignored, an empty body is {}.
bool FromJson(std::string_view json, pb::Message* m, std::string* error) {
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (json.find_first_not_of(" \t\r\n") == std::string_view::npos) return true;
  auto st = pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()), m, options);
  if (st.ok()) return true;
  // protobuf's message goes on with a caret line under the input; the first line says it all.
  std::string_view what(st.message().data(), st.message().size());
  *error = "invalid JSON body: " + std::string(what.substr(0, what.find('\n')));
  return false;
}

// Splits a stream of JSON objects ("{...}{...}" or one per line) into the objects, tracking
// nesting and strings only; each object is then parsed by protobuf. False with `error` when the
// text is not a sequence of objects.
bool SplitObjects(std::string_view body, std::vector<std::string_view>* out, std::string* error) {
  size_t i = 0;
  while (true) {
    while (i < body.size() && std::isspace(static_cast<unsigned char>(body[i]))) ++i;
    if (i == body.size()) return true;
    if (body[i] != '{') {
      *error = std::string("invalid character '") + body[i] + "' looking for beginning of value";
      return false;
    }
    size_t start = i;
    int depth = 0;
    bool in_string = false;
    for (; i < body.size(); ++i) {
      char c = body[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) break;
      }
    }
    if (i >= body.size()) {
      *error = "unexpected EOF";
      return false;
    }
    ++i;
    out->push_back(body.substr(start, i - start));
  }
}

std::string EscapeJson(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || c == '<' || c == '>' || c == '&') {
      // Go's encoding/json escapes control characters and, by default, HTML's < > &.
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string StatusText(unsigned status) {
  return std::string(http::obsolete_reason(static_cast<http::status>(status)));
}

// One pending call: waits for completion-queue events while watching the HTTP peer and the
// server's stop flag, canceling the call once either is gone.
class CallWaiter {
 public:
  CallWaiter(grpc::CompletionQueue* cq, grpc::ClientContext* ctx, Connection* conn,
             const std::atomic<bool>* stopping)
      : cq_(cq), ctx_(ctx), conn_(conn), stopping_(stopping) {}

  // Waits for the one outstanding operation; returns its `ok`.
  bool Await() {
    for (;;) {
      void* tag = nullptr;
      bool ok = false;
      gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                           gpr_time_from_millis(kCancelCheckMs, GPR_TIMESPAN));
      auto r = cq_->AsyncNext(&tag, &ok, deadline);
      if (r == grpc::CompletionQueue::GOT_EVENT) return ok;
      if (r == grpc::CompletionQueue::SHUTDOWN) return false;
      if (!canceled_ && (stopping_->load() || conn_->PeerClosed())) Cancel();
    }
  }
  void Cancel() {
    canceled_ = true;
    ctx_->TryCancel();
  }
  bool canceled() const { return canceled_; }

  ~CallWaiter() {
    cq_->Shutdown();
    void* tag;
    bool ok;
    while (cq_->Next(&tag, &ok)) {
    }
  }

 private:
  grpc::CompletionQueue* cq_;
  grpc::ClientContext* ctx_;
  Connection* conn_;
  const std::atomic<bool>* stopping_;
  bool canceled_ = false;
};

// The Authorization header becomes the call's `token` metadata, as etcd's gateway passes it.
bool AddToken(const Request& request, grpc::ClientContext* ctx) {
  auto it = request.find(http::field::authorization);
  if (it == request.end()) return true;
  std::string_view token(it->value().data(), it->value().size());
  for (char c : token) {
    if (c < 0x20 || c > 0x7e) return false;  // gRPC metadata values are printable ASCII
  }
  ctx->AddMetadata("token", std::string(token));
  return true;
}

void* Tag() { return reinterpret_cast<void*>(1); }

std::string GrpcPath(const Route& route) {
  return "/" + std::string(route.service) + "/" + std::string(route.method);
}

std::string StreamHeader() {
  return "HTTP/1.1 200 OK\r\n"
         "Access-Control-Allow-Headers: accept, content-type, authorization\r\n"
         "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\n"
         "Access-Control-Allow-Origin: *\r\n"
         "Content-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n"
         "Connection: close\r\n\r\n";
}

}  // namespace

unsigned HttpStatusOfCode(int code) {
  // grpc-gateway v1's HTTPStatusFromCode, which etcd 3.4's gateway uses.
  switch (static_cast<grpc::StatusCode>(code)) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 408;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 412;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:
      return 500;  // Unknown, Internal, DataLoss
  }
}

std::string ErrorJson(int code, std::string_view message) {
  std::string m = EscapeJson(message);
  return "{\"error\":\"" + m + "\",\"message\":\"" + m + "\",\"code\":" + std::to_string(code) +
         "}";
}

std::string HttpResponse(unsigned status, std::string_view content_type, std::string_view body,
                         bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set("Access-Control-Allow-Headers", "accept, content-type, authorization");
  res.set("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
  res.set("Access-Control-Allow-Origin", "*");
  if (!content_type.empty()) {
    res.set(http::field::content_type,
            boost::beast::string_view(content_type.data(), content_type.size()));
  }
  res.body() = std::string(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  std::ostringstream os;
  os << res;
  return os.str();
}

JsonGateway::JsonGateway(std::shared_ptr<grpc::Channel> channel, const std::atomic<bool>* stopping)
    : channel_(std::move(channel)), stub_(channel_), stopping_(stopping) {}

bool JsonGateway::Serve(const Route& route, const Request& request, Connection* conn) {
  if (route.kind == CallKind::kUnary) return ServeUnary(route, request, conn);
  return ServeStream(route, request, conn);
}

bool JsonGateway::ServeUnary(const Route& route, const Request& request, Connection* conn) {
  bool keep_alive = request.keep_alive();
  auto reply = [&](unsigned status, const std::string& body) {
    return conn->Write(HttpResponse(status, "application/json", body, keep_alive),
                       kWriteTimeoutMs) &&
           keep_alive;
  };
  const pb::MethodDescriptor* method = FindMethod(route);
  if (method == nullptr) return reply(501, ErrorJson(12, "unknown service " + GrpcPath(route)));
  auto req = NewMessage(method->input_type());
  std::string error;
  // As etcd's gateway (Go's json.Decoder), the body's first JSON value is the request and
  // whatever follows it is ignored.
  std::vector<std::string_view> objects;
  SplitObjects(request.body(), &objects, &error);
  std::string_view body = objects.empty() ? std::string_view(request.body()) : objects.front();
  if (!FromJson(body, req.get(), &error)) return reply(400, ErrorJson(3, error));

  grpc::ClientContext ctx;
  if (!AddToken(request, &ctx)) return reply(400, ErrorJson(3, "invalid Authorization header"));
  grpc::CompletionQueue cq;
  grpc::ByteBuffer response;
  grpc::Status status;
  {
    CallWaiter waiter(&cq, &ctx, conn, stopping_);
    auto call = stub_.PrepareUnaryCall(&ctx, GrpcPath(route), Serialize(*req), &cq);
    call->StartCall();
    call->Finish(&response, &status, Tag());
    waiter.Await();
    if (waiter.canceled() && !stopping_->load()) return false;  // the peer left
  }
  if (!status.ok()) {
    return reply(HttpStatusOfCode(status.error_code()),
                 ErrorJson(status.error_code(), status.error_message()));
  }
  auto resp = NewMessage(method->output_type());
  if (!Deserialize(response, resp.get())) {
    return reply(500, ErrorJson(13, "cannot decode the response"));
  }
  return reply(200, ToJson(*resp));
}

bool JsonGateway::ServeStream(const Route& route, const Request& request, Connection* conn) {
  auto fail_early = [&](unsigned status, const std::string& body) {
    conn->Write(HttpResponse(status, "application/json", body, false), kWriteTimeoutMs);
    return false;
  };
  const pb::MethodDescriptor* method = FindMethod(route);
  if (method == nullptr) return fail_early(501, ErrorJson(12, "unknown service"));
  // The body is a stream of request objects, read whole before the call starts. etcd's gateway
  // answers a body it cannot decode with code 2 (Unknown) and HTTP 500; so does cairn.
  std::vector<std::string_view> objects;
  std::string error;
  std::vector<std::unique_ptr<pb::Message>> requests;
  // Past the first request, etcd's gateway stops at what it cannot decode and streams on with
  // the requests before it; so does cairn.
  bool split = SplitObjects(request.body(), &objects, &error);
  if (!split && objects.empty()) return fail_early(500, ErrorJson(2, error));
  if (route.kind == CallKind::kServerStream && objects.empty()) objects.push_back("{}");
  for (std::string_view object : objects) {
    auto message = NewMessage(method->input_type());
    if (!FromJson(object, message.get(), &error)) {
      if (requests.empty()) return fail_early(500, ErrorJson(2, error));
      break;
    }
    requests.push_back(std::move(message));
  }
  grpc::ClientContext ctx;
  if (!AddToken(request, &ctx))
    return fail_early(400, ErrorJson(3, "invalid Authorization header"));

  grpc::CompletionQueue cq;
  bool headers_sent = false;
  bool peer_ok = true;
  grpc::Status status;
  {
    CallWaiter waiter(&cq, &ctx, conn, stopping_);
    auto call = stub_.PrepareCall(&ctx, GrpcPath(route), &cq);
    call->StartCall(Tag());
    bool ok = waiter.Await();
    for (size_t i = 0; ok && i < requests.size(); ++i) {
      call->Write(Serialize(*requests[i]), Tag());
      ok = waiter.Await();
    }
    // A server stream has its one request; a bidi stream stays open for the watch or keepalive
    // to go on until the peer leaves.
    if (ok && route.kind == CallKind::kServerStream) {
      call->WritesDone(Tag());
      ok = waiter.Await();
    }
    auto resp = NewMessage(method->output_type());
    while (true) {
      grpc::ByteBuffer bb;
      call->Read(&bb, Tag());
      if (!waiter.Await()) break;
      resp->Clear();
      if (!Deserialize(bb, resp.get())) {
        waiter.Cancel();
        continue;
      }
      if (!headers_sent) {
        headers_sent = true;
        peer_ok = conn->Write(StreamHeader(), kWriteTimeoutMs);
      }
      if (peer_ok)
        peer_ok = conn->WriteChunk("{\"result\":" + ToJson(*resp) + "}\n", kWriteTimeoutMs);
      if (!peer_ok && !waiter.canceled()) waiter.Cancel();
    }
    call->Finish(&status, Tag());
    waiter.Await();
    if (waiter.canceled()) peer_ok = peer_ok && stopping_->load();
  }
  if (!headers_sent) {
    if (status.ok()) {
      if (conn->Write(StreamHeader(), kWriteTimeoutMs)) conn->WriteLastChunk(kWriteTimeoutMs);
      return false;
    }
    return fail_early(HttpStatusOfCode(status.error_code()),
                      ErrorJson(status.error_code(), status.error_message()));
  }
  if (!peer_ok) return false;
  if (!status.ok()) {
    // grpc-gateway v1's error object inside a stream whose header is already sent.
    unsigned http_code = HttpStatusOfCode(status.error_code());
    std::string line = "{\"error\":{\"grpc_code\":" + std::to_string(status.error_code()) +
                       ",\"http_code\":" + std::to_string(http_code) + ",\"message\":\"" +
                       EscapeJson(status.error_message()) + "\",\"http_status\":\"" +
                       StatusText(http_code) + "\"}}\n";
    conn->WriteChunk(line, kWriteTimeoutMs);
  }
  conn->WriteLastChunk(kWriteTimeoutMs);
  return false;
}

}  // namespace cairn::api::gateway
