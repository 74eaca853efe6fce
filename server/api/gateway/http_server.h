// HttpServer: cairn's HTTP/1.1 side (Boost.Beast's parser), on the client URLs beside gRPC, on
// --listen-client-http-urls and on --listen-metrics-urls. It serves
//   /health, /livez, /readyz, /version, /metrics   (GET)
//   /v3/... and /v3beta/...                         (POST; the JSON gateway, json_gateway.h)
// A metrics-only server (--listen-metrics-urls) serves /metrics and /health and nothing else.
//
// One thread per connection, at most kMaxHttpConnections at once (docs/limits.md); HTTP/1.1
// serves one request at a time per connection, so a connection holds at most one call or
// stream. A slow reader of a watch stream holds only its own thread; the watch behind it is
// bounded by the gRPC watch service's own per-stream buffer.
//
// Thread safety: thread-safe. Adopt may be called from any thread; Stop once, after the
// listeners handing connections over have stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/api/gateway/connection.h"
#include "server/api/gateway/json_gateway.h"

namespace cairn::api::gateway {

// Connections served at once, per HttpServer; more are answered 503 and closed.
inline constexpr int kMaxHttpConnections = 256;

// The request body limit for --max-request-bytes: twice it (base64 makes bytes 4/3 as long,
// field names and escapes add more) plus the gRPC side's 512 KiB margin. The decoded request
// then meets the gRPC size limit as any gRPC request does.
inline size_t HttpBodyBytesMax(int64_t max_request_bytes) {
  return 2 * static_cast<size_t>(max_request_bytes) + 512 * 1024;
}

// What /health, /livez and /readyz report.
struct HealthState {
  bool has_leader = false;
  std::vector<std::string> alarms;  // raised alarms by etcd's name: "NOSPACE", "CORRUPT"
};

struct HttpOptions {
  size_t body_bytes_max = 0;             // a larger request body gets 413
  bool metrics_only = false;             // /metrics and /health only
  std::function<std::string()> metrics;  // Prometheus text exposition (format 0.0.4)
  std::function<HealthState()> health;
  std::string version_json;                // {"etcdserver":"...","etcdcluster":"..."}
  std::shared_ptr<grpc::Channel> channel;  // to the gRPC services; null when metrics_only
  // Sent with a TLS client's verified certificate CN to the gRPC services, which take the CN
  // as the caller's identity only with this key (AuthStore::internal_token; docs/gateway.md).
  std::string identity_key;
};

class HttpServer {
 public:
  explicit HttpServer(HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serves the accepted connection `fd` (ownership passes) on a thread of its own; at the
  // connection limit or once stopping, answers 503 and closes it.
  void Adopt(int fd);
  // The same for a connection on an https port: TLS with `tls` (tls_context.h), the handshake
  // done on the connection's thread (kTlsHandshakeTimeoutMs). At the limit it is closed.
  void Adopt(int fd, std::shared_ptr<SSL_CTX> tls);
  // Cancels pending calls, closes every connection and joins their threads.
  void Stop();

  int connections() const;

 private:
  struct Slot {
    std::unique_ptr<Connection> conn;
    std::thread thread;
  };
  void Serve(uint64_t id, Connection* conn);
  // Answers one request; false when the connection is to be closed.
  bool Dispatch(const Request& request, Connection* conn);
  bool Reply(Connection* conn, unsigned status, std::string_view content_type,
             std::string_view body, bool keep_alive);
  void ReapFinished();

  HttpOptions options_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<JsonGateway> gateway_;
  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cairn::api::gateway
