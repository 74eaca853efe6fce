#include "server/api/client_server.h"

#include <algorithm>
#include <chrono>
#include <climits>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "server/api/decode_error_interceptor.h"
#include "server/api/metrics_text.h"
#include "server/api/tls.h"
#include "server/base/logging.h"
#include "server/base/url.h"

namespace cairn::api {

namespace {
// etcd lets gRPC accept this much beyond --max-request-bytes, then rejects the proposal itself
// with "request is too large" (so the client sees etcd's error, not gRPC's).
constexpr int kGrpcOverheadBytes = 512 * 1024;
// etcd's gRPC keepalive defaults (--grpc-keepalive-min-time, -interval, -timeout).
constexpr int kGrpcKeepaliveMinTimeMs = 5 * 1000;
constexpr int kGrpcKeepaliveIntervalMs = 2 * 60 * 60 * 1000;
constexpr int kGrpcKeepaliveTimeoutMs = 20 * 1000;

// Both kinds of URL share their port between gRPC and HTTP (gateway/listener.h).
bool IsTlsUrl(const std::string& url) { return url.rfind("https://", 0) == 0; }
}  // namespace

ClientServer::ClientServer(etcdserver::Server* server)
    : server_(server),
      handlers_(server, &gate_),
      kv_(&handlers_),
      maintenance_(&handlers_, server, &gate_),
      cluster_(&handlers_),
      watch_(server, &gate_),
      lease_(&handlers_),
      auth_handlers_(server, &gate_),
      auth_(&auth_handlers_),
      lock_(&recipe_host_, &gate_, server->auth()),
      election_(&recipe_host_, &gate_, server->auth()) {
  gate_.SetSpaceCheck([server] { return server->SpaceExceeded(); });  // quota, NOSPACE
  gate_.SetCorruptCheck([server] { return server->Corrupted(); });    // CORRUPT
}

ClientServer::~ClientServer() { Shutdown(0); }

absl::StatusOr<std::vector<std::string>> ClientServer::Start(
    const std::vector<std::string>& listen_urls) {
  grpc::ServerBuilder builder;
  // https:// URLs: TLS per --cert-file and friends (server/api/tls.h). The Listener owns every
  // client port; on https ports it relays gRPC's TLS connections to gRPC's own TLS listener on
  // an internal loopback port and terminates the HTTP gateway's TLS itself (listener.h).
  auto credentials = ClientListenerCredentials(server_->config(), listen_urls);
  if (!credentials.ok()) return credentials.status();
  int grpc_tls_port = 0;
  bool any_tls = false;
  for (size_t i = 0; i < listen_urls.size() && !any_tls; ++i) {
    if (!IsTlsUrl(listen_urls[i])) continue;
    any_tls = true;
    builder.AddListeningPort("127.0.0.1:0", (*credentials)[i], &grpc_tls_port);
  }
  auto listener = std::make_unique<gateway::Listener>();
  auto bound = listener->Bind(listen_urls);
  if (!bound.ok()) return bound.status();
  // gRPC sets SO_REUSEPORT by default: a second member on the same port would start silently and
  // take half the connections. Refuse instead, as etcd does.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // etcd's --grpc-keepalive-min-time (5 s): a client may ping that often on a quiet connection.
  // gRPC's default (5 min) answers faster pings with GOAWAY "too_many_pings", which ended
  // etcdctl's long calls (a physical compaction of 40 s). etcd's --grpc-keepalive-interval (2 h)
  // and --grpc-keepalive-timeout (20 s) for the server's own pings.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kGrpcKeepaliveMinTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kGrpcKeepaliveIntervalMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kGrpcKeepaliveTimeoutMs);
  builder.SetMaxReceiveMessageSize(static_cast<int>(server_->config().max_request_bytes) +
                                   kGrpcOverheadBytes);
  builder.SetMaxSendMessageSize(INT_MAX);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<DecodeErrorInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(&kv_);
  builder.RegisterService(&maintenance_);
  builder.RegisterService(&cluster_);
  builder.RegisterService(&watch_);
  builder.RegisterService(&lease_);
  builder.RegisterService(&auth_);
  builder.RegisterService(&lock_);
  builder.RegisterService(&election_);
  grpc_ = builder.BuildAndStart();
  if (!grpc_) return absl::UnavailableError("cannot listen on the client URLs");
  absl::Status tls_status;
  if (any_tls && grpc_tls_port == 0) {
    tls_status = absl::UnavailableError("cannot listen on gRPC's internal TLS port 127.0.0.1:0");
  } else if (any_tls) {
    auto context = GatewayTlsContext(server_->config(), listen_urls);
    if (context.ok()) {
      tls_ = *std::move(context);
      listener->SetTls(tls_, grpc_tls_port);
    } else {
      tls_status = context.status();
    }
  }
  if (!tls_status.ok()) {
    grpc_->Shutdown();
    grpc_.reset();
    return tls_status;
  }
  for (const auto& b : *bound) CAIRN_LOG(kInfo, "api") << "serving client requests on " << b;
  // The recipe services' own client: its calls pass this server's services and gate.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  if (absl::Status st =
          recipe_host_.Start(grpc_->InProcessChannel(args), server_->auth()->internal_token());
      !st.ok()) {
    recipe_host_.Stop();  // ends the calls that came meanwhile
    grpc_->Shutdown();
    grpc_.reset();
    return st;
  }
  http_ = std::make_unique<gateway::HttpServer>(HttpOptions(/*metrics_only=*/false));
  listener->Start(grpc_.get(), http_on_client_urls_ ? http_.get() : nullptr);
  listeners_.push_back(std::move(listener));
  return *bound;
}

gateway::HttpOptions ClientServer::HttpOptions(bool metrics_only) {
  gateway::HttpOptions options;
  options.body_bytes_max = gateway::HttpBodyBytesMax(server_->config().max_request_bytes);
  options.metrics_only = metrics_only;
  options.metrics = metrics_ ? metrics_ : [this] { return GateMetricsText(gate_); };
  options.health = [this] {
    gateway::HealthState h;
    h.has_leader = server_->leader() != 0;
    if (alarms_) h.alarms = alarms_();
    return h;
  };
  options.identity_key = server_->auth()->internal_token();
  options.version_json = std::string("{\"etcdserver\":\"") + kEtcdApiVersion +
                         "\",\"etcdcluster\":\"" + kEtcdApiVersion + "\"}";
  if (!metrics_only) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    options.channel = grpc_->InProcessChannel(args);
  }
  return options;
}

absl::StatusOr<std::vector<std::string>> ClientServer::ServeHttpOnly(
    const std::vector<std::string>& urls, bool metrics_only) {
  if (!grpc_) return absl::FailedPreconditionError("the client server is not started");
  auto listener = std::make_unique<gateway::Listener>();
  auto bound = listener->Bind(urls);
  if (!bound.ok()) return bound.status();
  if (std::any_of(urls.begin(), urls.end(), IsTlsUrl)) {
    if (!tls_) {
      auto context = GatewayTlsContext(server_->config(), urls);
      if (!context.ok()) return context.status();
      tls_ = *std::move(context);
    }
    listener->SetTls(tls_, /*grpc_tls_port=*/0);  // HTTP only: nothing is relayed
  }
  gateway::HttpServer* http = http_.get();
  if (metrics_only) {
    if (!metrics_http_) {
      metrics_http_ = std::make_unique<gateway::HttpServer>(HttpOptions(/*metrics_only=*/true));
    }
    http = metrics_http_.get();
  }
  listener->Start(/*grpc=*/nullptr, http);
  listeners_.push_back(std::move(listener));
  for (const auto& b : *bound) {
    CAIRN_LOG(kInfo, "api") << "serving " << (metrics_only ? "metrics" : "HTTP client requests")
                            << " on " << b;
  }
  return bound;
}

void ClientServer::Shutdown(int deadline_ms) {
  if (!grpc_) return;
  // The HTTP side first: its calls go to the gRPC services below.
  for (auto& l : listeners_) l->Stop();
  listeners_.clear();
  if (http_) http_->Stop();
  if (metrics_http_) metrics_http_->Stop();
  http_.reset();  // and its in-process channel, before the server it leads to
  metrics_http_.reset();
  // First the pending lock/election calls and the in-process client's streams: the server's
  // shutdown waits for every call, theirs included.
  recipe_host_.Stop();
  // gRPC's deadline is an absolute time on its own real clock, hence the system clock here
  // (allowed in tests/deps/check_io.py).
  grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  grpc_->Wait();
  grpc_.reset();
}

}  // namespace cairn::api
