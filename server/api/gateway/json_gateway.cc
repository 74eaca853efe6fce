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
#include <deque>
#include <functional>
#include <iterator>
#include <sstream>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "server/api/gateway/body_stream.h"
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

  // Waits for the next event of the queue; false when the queue is shut down.
  bool Next(void** tag, bool* ok) {
    for (;;) {
      gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                           gpr_time_from_millis(kCancelCheckMs, GPR_TIMESPAN));
      auto r = cq_->AsyncNext(tag, ok, deadline);
      if (r == grpc::CompletionQueue::GOT_EVENT) return true;
      if (r == grpc::CompletionQueue::SHUTDOWN) return false;
      if (!canceled_ && (stopping_->load() || conn_->PeerClosed())) Cancel();
    }
  }
  // Waits for the one outstanding operation; returns its `ok`.
  bool Await() {
    void* tag = nullptr;
    bool ok = false;
    return Next(&tag, &ok) && ok;
  }
  // Waits for the operation of `want`, passing other events to `other`.
  bool AwaitTag(void* want, const std::function<void(void*, bool)>& other) {
    void* tag = nullptr;
    bool ok = false;
    while (Next(&tag, &ok)) {
      if (tag == want) return ok;
      other(tag, ok);
    }
    return false;
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

bool Printable(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// A TLS client's verified certificate CN, which the gate takes as the user when no token is
// sent (etcd's --client-cert-auth), as gRPC's side reads it from the connection's auth context.
void AddCommonName(const Connection& conn, const std::string& key, grpc::ClientContext* ctx) {
  const auto& cn = conn.peer_common_name();
  if (!cn || cn->empty() || key.empty() || !Printable(*cn)) return;
  ctx->AddMetadata(kGatewayCommonNameMetadata, *cn);
  ctx->AddMetadata(kGatewayKeyMetadata, key);
}

void* Tag() { return reinterpret_cast<void*>(1); }
// A bidi stream's operations, which may be outstanding together.
void* const kReadTag = reinterpret_cast<void*>(2);
void* const kWriteTag = reinterpret_cast<void*>(3);
void* const kAlarmTag = reinterpret_cast<void*>(4);

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

JsonGateway::JsonGateway(std::shared_ptr<grpc::Channel> channel, size_t body_bytes_max,
                         const std::atomic<bool>* stopping, std::string identity_key)
    : channel_(std::move(channel)),
      stub_(channel_),
      body_bytes_max_(body_bytes_max),
      stopping_(stopping),
      identity_key_(std::move(identity_key)) {}

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
  std::vector<std::string> objects;
  SplitObjects(request.body(), &objects, &error);
  std::string_view body = objects.empty() ? std::string_view(request.body()) : objects.front();
  if (!FromJson(body, req.get(), &error)) return reply(400, ErrorJson(3, error));

  grpc::ClientContext ctx;
  if (!AddToken(request, &ctx)) return reply(400, ErrorJson(3, "invalid Authorization header"));
  AddCommonName(*conn, identity_key_, &ctx);
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

// The response side of a stream: newline-delimited {"result":...} objects in a chunked body whose
// header is written with the first of them; the end as etcd's gateway writes it.
class StreamOut {
 public:
  explicit StreamOut(Connection* conn) : conn_(conn) {}
  // Writes one response; false when the peer is gone or too slow.
  bool Deliver(const pb::Message& resp) {
    if (!headers_sent_) {
      headers_sent_ = true;
      peer_ok_ = conn_->Write(StreamHeader(), kWriteTimeoutMs);
    }
    if (peer_ok_) {
      peer_ok_ = conn_->WriteChunk("{\"result\":" + ToJson(resp) + "}\n", kWriteTimeoutMs);
    }
    return peer_ok_;
  }
  void PeerGone() { peer_ok_ = false; }
  // Ends the response with the call's `status`. Always false: the connection closes after it.
  bool End(const grpc::Status& status) {
    if (!headers_sent_) {
      if (status.ok()) {
        if (conn_->Write(StreamHeader(), kWriteTimeoutMs)) conn_->WriteLastChunk(kWriteTimeoutMs);
        return false;
      }
      conn_->Write(HttpResponse(HttpStatusOfCode(status.error_code()), "application/json",
                                ErrorJson(status.error_code(), status.error_message()), false),
                   kWriteTimeoutMs);
      return false;
    }
    if (!peer_ok_) return false;
    if (!status.ok()) {
      // grpc-gateway v1's error object inside a stream whose header is already sent.
      unsigned http_code = HttpStatusOfCode(status.error_code());
      std::string line = "{\"error\":{\"grpc_code\":" + std::to_string(status.error_code()) +
                         ",\"http_code\":" + std::to_string(http_code) + ",\"message\":\"" +
                         EscapeJson(status.error_message()) + "\",\"http_status\":\"" +
                         StatusText(http_code) + "\"}}\n";
      conn_->WriteChunk(line, kWriteTimeoutMs);
    }
    conn_->WriteLastChunk(kWriteTimeoutMs);
    return false;
  }

 private:
  Connection* const conn_;
  bool headers_sent_ = false;
  bool peer_ok_ = true;
};

namespace {

grpc::Status TooLarge(size_t limit) {
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "request body larger than " + std::to_string(limit) + " bytes");
}

}  // namespace

bool JsonGateway::Serve(const Route& route, const Request& request, Connection* conn) {
  if (route.kind == CallKind::kUnary) return ServeUnary(route, request, conn);
  const pb::MethodDescriptor* method = FindMethod(route);
  StreamOut out(conn);
  if (method == nullptr)
    return out.End(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown service"));
  auto prototype = NewMessage(method->input_type());
  // The requests known before the call starts. etcd's gateway answers a first request it cannot
  // decode with code 2 (Unknown) and HTTP 500; so does cairn. Past the first, it stops at what
  // it cannot decode and streams on with the requests before it; so does cairn.
  std::vector<std::unique_ptr<pb::Message>> requests;
  ObjectStream objects(body_bytes_max_);
  grpc::Status early;
  if (conn->streaming_body()) {
    early = ReadFirstRequest(conn, *prototype, &objects, &requests);
  } else {
    std::vector<std::string> texts;
    std::string error;
    bool split = SplitObjects(request.body(), &texts, &error);
    if (!split && texts.empty()) early = grpc::Status(grpc::StatusCode::UNKNOWN, error);
    if (route.kind == CallKind::kServerStream && texts.empty()) texts.push_back("{}");
    for (size_t i = 0; early.ok() && i < texts.size(); ++i) {
      std::unique_ptr<pb::Message> m(prototype->New());
      if (!FromJson(texts[i], m.get(), &error)) {
        if (requests.empty()) early = grpc::Status(grpc::StatusCode::UNKNOWN, error);
        break;
      }
      requests.push_back(std::move(m));
    }
  }
  if (early.error_code() == grpc::StatusCode::ABORTED) return false;  // the peer left
  if (!early.ok()) return out.End(early);
  grpc::ClientContext ctx;
  if (!AddToken(request, &ctx)) {
    return out.End(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "invalid Authorization header"));
  }
  AddCommonName(*conn, identity_key_, &ctx);
  return RunStream(route, *method, std::move(requests), conn->streaming_body() ? &objects : nullptr,
                   &ctx, conn, &out);
}

grpc::Status JsonGateway::ReadFirstRequest(Connection* conn, const pb::Message& prototype,
                                           ObjectStream* objects,
                                           std::vector<std::unique_ptr<pb::Message>>* out) {
  std::string object, error, bytes;
  for (;;) {
    switch (objects->Pop(&object, &error)) {
      case ObjectStream::Next::kObject: {
        std::unique_ptr<pb::Message> m(prototype.New());
        if (!FromJson(object, m.get(), &error)) {
          return grpc::Status(grpc::StatusCode::UNKNOWN, error);
        }
        out->push_back(std::move(m));
        return grpc::Status::OK;
      }
      case ObjectStream::Next::kError:
        return grpc::Status(grpc::StatusCode::UNKNOWN, error);
      case ObjectStream::Next::kTooLarge:
        return TooLarge(body_bytes_max_);
      case ObjectStream::Next::kNeedMore:
        break;
    }
    bytes.clear();
    switch (conn->ReadBodySome(kHttpIdleTimeoutMs, &bytes)) {
      case Connection::BodyResult::kData:
        objects->Append(bytes);
        break;
      case Connection::BodyResult::kEnd:
        if (objects->HasPartial()) return grpc::Status(grpc::StatusCode::UNKNOWN, "unexpected EOF");
        return grpc::Status::OK;  // no request: the stream waits for the peer to leave
      case Connection::BodyResult::kTimedOut:
      case Connection::BodyResult::kClosed:
      case Connection::BodyResult::kMalformed:
        return grpc::Status(grpc::StatusCode::ABORTED, "");  // close without an answer
    }
  }
}

bool JsonGateway::RunStream(const Route& route, const pb::MethodDescriptor& method,
                            std::vector<std::unique_ptr<pb::Message>> requests, ObjectStream* body,
                            grpc::ClientContext* ctx, Connection* conn, StreamOut* out) {
  grpc::CompletionQueue cq;
  grpc::Status status;
  bool too_large = false;
  {
    CallWaiter waiter(&cq, ctx, conn, stopping_);
    auto call = stub_.PrepareCall(ctx, GrpcPath(route), &cq);
    call->StartCall(Tag());
    bool started = waiter.Await();
    std::deque<std::unique_ptr<pb::Message>> queued(std::make_move_iterator(requests.begin()),
                                                    std::make_move_iterator(requests.end()));
    // A bidi stream's later requests, read from the body as they arrive (body_stream.h).
    auto prototype = NewMessage(method.input_type());
    std::unique_ptr<BodyReader> reader;
    if (body != nullptr) {
      reader = std::make_unique<BodyReader>(conn, body, prototype.get(), &cq, kAlarmTag);
    }
    bool writing = false, write_broken = !started;
    auto send_next = [&] {
      if (writing || write_broken) return;
      std::unique_ptr<pb::Message> next;
      if (!queued.empty()) {
        next = std::move(queued.front());
        queued.pop_front();
      } else if (reader) {
        BodyReader::End end = BodyReader::End::kNone;
        next = reader->Pop(&end);
        if (end == BodyReader::End::kPeerGone && !waiter.canceled()) waiter.Cancel();
        if (end == BodyReader::End::kTooLarge && !too_large) {
          too_large = true;
          waiter.Cancel();
        }
      }
      if (next == nullptr) return;
      call->Write(Serialize(*next), kWriteTag);
      writing = true;
    };
    auto on_other = [&](void* tag, bool ok) {
      if (tag == kAlarmTag) {
        reader->AlarmDelivered();
      } else if (tag == kWriteTag) {
        writing = false;
        write_broken = write_broken || !ok;
      }
      send_next();
    };
    send_next();
    if (started && route.kind == CallKind::kServerStream) {
      // A server stream has its one request, then the client's side is done.
      if (writing && !waiter.AwaitTag(kWriteTag, on_other)) write_broken = true;
      writing = false;
      call->WritesDone(Tag());
      waiter.AwaitTag(Tag(), on_other);
    }
    if (reader) reader->Start();
    auto resp = NewMessage(method.output_type());
    grpc::ByteBuffer bb;
    while (started) {
      call->Read(&bb, kReadTag);
      if (!waiter.AwaitTag(kReadTag, on_other)) break;
      resp->Clear();
      if (!Deserialize(bb, resp.get())) {
        waiter.Cancel();
        continue;
      }
      if (!out->Deliver(*resp) && !waiter.canceled()) waiter.Cancel();
    }
    write_broken = true;  // nothing more is sent
    if (writing) waiter.AwaitTag(kWriteTag, on_other);
    reader.reset();  // stops reading the body; its alarm's tag may still arrive
    call->Finish(&status, Tag());
    waiter.AwaitTag(Tag(), [&](void*, bool) {});
    if (waiter.canceled() && !too_large && !stopping_->load()) out->PeerGone();
  }
  if (too_large) return out->End(TooLarge(body_bytes_max_));
  return out->End(status);
}

}  // namespace cairn::api::gateway
