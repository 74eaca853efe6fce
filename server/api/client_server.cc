#include "server/api/client_server.h"

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

// TLS URLs stay with gRPC's own listener (no HTTP/1.1 on them); plain ones share their port
// between gRPC and HTTP (gateway/listener.h).
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
  std::vector<std::string> hostports;  // of the TLS URLs, which gRPC listens on itself
  std::vector<std::unique_ptr<int>> ports;
  std::vector<std::string> plain_urls;
  // https:// URLs: gRPC listens itself, with TLS per --cert-file and friends (server/api/tls.h).
  auto credentials = ClientListenerCredentials(server_->config(), listen_urls);
  if (!credentials.ok()) return credentials.status();
  for (size_t i = 0; i < listen_urls.size(); ++i) {
    if (!IsTlsUrl(listen_urls[i])) {
      plain_urls.push_back(listen_urls[i]);
      continue;
    }
    auto hp = base::HostPortOfUrl(listen_urls[i]);
    if (!hp.ok()) return hp.status();
    hostports.push_back(*hp);
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(*hp, (*credentials)[i], ports.back().get());
  }
  auto listener = std::make_unique<gateway::Listener>();
  auto plain_bound = listener->Bind(plain_urls);
  if (!plain_bound.ok()) return plain_bound.status();
  // gRPC sets SO_REUSEPORT by default: a second member on the same port would start silently and
  // take half the connections. Refuse instead, as etcd does.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
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
  std::vector<std::string> tls_bound;
  for (size_t i = 0; i < hostports.size(); ++i) {
    if (*ports[i] == 0) {
      grpc_->Shutdown();
      grpc_.reset();
      return absl::UnavailableError("cannot listen on " + hostports[i]);
    }
    std::string host = hostports[i].substr(0, hostports[i].rfind(':'));
    tls_bound.push_back(host + ":" + std::to_string(*ports[i]));
  }
  std::vector<std::string> bound;
  for (size_t plain = 0, tls = 0; plain + tls < listen_urls.size();) {
    bound.push_back(IsTlsUrl(listen_urls[plain + tls]) ? tls_bound[tls++]
                                                       : (*plain_bound)[plain++]);
    CAIRN_LOG(kInfo, "api") << "serving client requests on " << bound.back();
  }
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
  return bound;
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
