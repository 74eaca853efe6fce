#include "server/api/client_server.h"

#include <chrono>
#include <climits>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "server/base/logging.h"
#include "server/base/url.h"

namespace cairn::api {

namespace {
// etcd lets gRPC accept this much beyond --max-request-bytes, then rejects the proposal itself
// with "request is too large" (so the client sees etcd's error, not gRPC's).
constexpr int kGrpcOverheadBytes = 512 * 1024;
}  // namespace

ClientServer::ClientServer(etcdserver::Server* server)
    : server_(server),
      handlers_(server, &gate_),
      kv_(&handlers_),
      maintenance_(&handlers_),
      cluster_(&handlers_),
      watch_(server, &gate_),
      lease_(&handlers_),
      auth_handlers_(server, &gate_),
      auth_(&auth_handlers_),
      lock_(&recipe_host_, &gate_),
      election_(&recipe_host_, &gate_) {}

ClientServer::~ClientServer() { Shutdown(0); }

absl::StatusOr<std::vector<std::string>> ClientServer::Start(
    const std::vector<std::string>& listen_urls) {
  grpc::ServerBuilder builder;
  std::vector<std::string> hostports;
  std::vector<std::unique_ptr<int>> ports;
  for (const auto& url : listen_urls) {
    auto hp = base::HostPortOfUrl(url);
    if (!hp.ok()) return hp.status();
    hostports.push_back(*hp);
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(*hp, grpc::InsecureServerCredentials(), ports.back().get());
  }
  // gRPC sets SO_REUSEPORT by default: a second member on the same port would start silently and
  // take half the connections. Refuse instead, as etcd does.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(server_->config().max_request_bytes) +
                                   kGrpcOverheadBytes);
  builder.SetMaxSendMessageSize(INT_MAX);
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
  std::vector<std::string> bound;
  for (size_t i = 0; i < hostports.size(); ++i) {
    if (*ports[i] == 0) {
      grpc_->Shutdown();
      grpc_.reset();
      return absl::UnavailableError("cannot listen on " + listen_urls[i]);
    }
    std::string host = hostports[i].substr(0, hostports[i].rfind(':'));
    bound.push_back(host + ":" + std::to_string(*ports[i]));
    CAIRN_LOG(kInfo, "api") << "serving client requests on " << bound.back();
  }
  // The recipe services' own client: its calls pass this server's services and gate.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  if (absl::Status st = recipe_host_.Start(grpc_->InProcessChannel(args)); !st.ok()) {
    recipe_host_.Stop();  // ends the calls that came meanwhile
    grpc_->Shutdown();
    grpc_.reset();
    return st;
  }
  return bound;
}

void ClientServer::Shutdown(int deadline_ms) {
  if (!grpc_) return;
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
