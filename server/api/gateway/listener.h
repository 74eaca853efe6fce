// Listener: accepts on cairn's plain-HTTP client URLs (http://host:port) and serves gRPC and
// HTTP/1.1 on the same port, as etcd does. Each accepted connection's first bytes are peeked:
// the HTTP/2 client preface ("PRI * HTTP/2.0...") hands the socket to the gRPC server
// (grpc::AddInsecureChannelFromFd), anything else to the HttpServer. Only the accept path
// differs from gRPC's own listener; an established gRPC connection is gRPC's alone.
// An HTTP-only listener (--listen-client-http-urls, --listen-metrics-urls) hands every
// connection to the HttpServer without peeking.
//
// https:// URLs (with SetTls) serve both too, TLS included (docs/gateway.md, "HTTPS"): the
// TLS ClientHello is peeked (not consumed) and its ALPN list read (PeekClientHello). No ALPN, or
// a list offering "http/1.1" (curl, browsers, Python's http.client): the HttpServer terminates
// TLS itself (TlsContext). Any other list ("h2" of etcdctl and Go's gRPC, "grpc-exp,h2" of gRPC
// C++): the bytes are relayed unchanged to gRPC's own TLS listener on a loopback port, so TLS
// and the client certificate stay gRPC's end to end. A plaintext client on an https port is
// closed without an answer (as etcd 3.4).
//
// Limits (docs/limits.md): at most kMaxUnclassifiedConnections connections waiting for their
// first bytes (a whole ClientHello on https ports), each for at most kFirstBytesTimeoutMs;
// beyond, new connections are closed. At most kMaxRelayedConnections relayed TLS connections,
// each with two kRelayBufferBytes buffers; beyond, new ones routed to the relay are closed.
//
// Thread safety: Bind, Start and Stop from one thread; accepting runs on a thread of its own.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/server.h>

#include "absl/status/statusor.h"
#include "server/api/gateway/http_server.h"
#include "server/api/gateway/tls_context.h"

namespace cairn::api::gateway {

inline constexpr int kMaxUnclassifiedConnections = 1024;
inline constexpr int kFirstBytesTimeoutMs = 10 * 1000;
inline constexpr int kMaxRelayedConnections = 1024;
inline constexpr size_t kRelayBufferBytes = 16 * 1024;

class Listener {
 public:
  Listener();
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds every "http://host:port" or "https://host:port" URL (port 0 picks a free port);
  // returns the bound "host:port" of each, in order. Errors: a malformed URL, a port in use.
  absl::StatusOr<std::vector<std::string>> Bind(const std::vector<std::string>& urls);
  // Before Start: the https URLs serve TLS, the gateway's with `tls`, gRPC's relayed to
  // 127.0.0.1:`grpc_tls_port` (gRPC's TLS listener). Without it https URLs are served as http.
  void SetTls(std::shared_ptr<TlsContext> tls, int grpc_tls_port);
  // Starts accepting on the bound URLs: HTTP/2 to `grpc` (started; null: HTTP only), the rest
  // to `http` (null: gRPC only, every connection goes to `grpc`). Both must outlive Stop.
  void Start(grpc::Server* grpc, HttpServer* http);
  // Stops accepting and closes the connections still unclassified; returns when the accept
  // thread has ended. Connections already handed over are the gRPC or HTTP server's to end.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace cairn::api::gateway
