// Internal core of the Cairn client: endpoints and channels, auth token, retry machinery for
// unary calls, timers. Not part of the public API.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/future.h"
#include "cairn/options.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace cairn::internal {

class WatchManager;
class LeaseKeeper;

// One server endpoint: its channel and the stubs of every service.
struct Endpoint {
  std::string address;  // host:port
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Cluster::Stub> cluster;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
  std::unique_ptr<etcdserverpb::Auth::Stub> auth;
  // Endpoints that failed recently are skipped while others are available.
  std::atomic<int64_t> bad_until_ns{0};
};

// A single timer thread running posted tasks at their time, in time order.
class Executor {
 public:
  Executor();
  ~Executor();
  void PostAt(Clock::time_point at, std::function<void()> fn);
  void Post(std::function<void()> fn) { PostAt(Clock::now(), std::move(fn)); }
  // Runs all pending tasks now (callers check Core::closed()) and joins the thread.
  void Shutdown();

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<Clock::time_point, std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

// Whether a call is a read (retried on UNAVAILABLE) or a write (retried only when the request
// surely never reached a server). docs/client.md "Retry policy".
enum class RpcClass { kRead, kWrite };

// Converts a gRPC status to an absl::Status with the same code and message.
absl::Status FromGrpc(const grpc::Status& s);
// True for the errors after which a fresh token makes the call succeed.
bool IsAuthError(const absl::Status& s);
// True when the failure happened before the request was handed to any server (no connection).
bool NeverReachedServer(const absl::Status& s);
// gRPC takes deadlines on the system clock; the client keeps them on the steady clock.
inline std::chrono::system_clock::time_point ToGrpcTime(Clock::time_point t) {
  if (t == Clock::time_point::max()) return std::chrono::system_clock::time_point::max();
  auto left = t - Clock::now();
  if (left > std::chrono::hours(24 * 365)) return std::chrono::system_clock::time_point::max();
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(left);
}
// Strips "http://"/"https://" and a trailing "/".
std::string NormalizeEndpoint(const std::string& url);

class Core : public std::enable_shared_from_this<Core> {
 public:
  static absl::StatusOr<std::shared_ptr<Core>> Create(const ClientOptions& options);
  // A core whose one endpoint is `channel` (client/src/in_process.h): no dialing, no TLS, no
  // auto-sync; every endpoint it would create uses `channel`. A non-empty `fixed_token` is the
  // token of every call (never refreshed).
  static absl::StatusOr<std::shared_ptr<Core>> CreateInProcess(
      std::shared_ptr<grpc::Channel> channel, const ClientOptions& options,
      const std::string& fixed_token = "");
  ~Core();

  const ClientOptions& options() const { return options_; }
  Executor& executor() { return executor_; }
  bool closed() const { return closed_.load(); }
  void Shutdown();

  // The endpoint calls go to first (skipping recently failed ones).
  std::shared_ptr<Endpoint> Current();
  // The endpoint for `address` (created and cached when not in the list).
  std::shared_ptr<Endpoint> EndpointFor(const std::string& address);
  // Marks `ep` failed and moves the client to the next endpoint.
  void ReportFailure(const std::shared_ptr<Endpoint>& ep);
  std::vector<std::string> Endpoints() const;
  void SetEndpoints(const std::vector<std::string>& endpoints);
  // Waits until some endpoint has a connection, up to `deadline`.
  absl::Status WaitForAnyConnection(Clock::time_point deadline);

  // Auth token management. Authenticate() obtains a token (blocking, fails over endpoints).
  bool has_credentials() const { return !options_.username.empty(); }
  std::string token() const;
  absl::Status Authenticate(Clock::time_point deadline);
  // Refreshes the token unless another caller already replaced `failed_token`.
  absl::Status RefreshToken(const std::string& failed_token, Clock::time_point deadline);

  // Sets deadline and metadata (token, hasleader) on a context; returns the token used.
  std::string PrepareContext(grpc::ClientContext* ctx, Clock::time_point deadline,
                             bool require_leader);
  Clock::time_point DeadlineFor(const CallOptions& call) const;
  std::chrono::nanoseconds Backoff(int attempt);

  // Namespace (key_prefix) helpers.
  const std::string& prefix() const { return options_.key_prefix; }
  std::string AddPrefix(const std::string& key) const { return options_.key_prefix + key; }
  // range_end for a namespaced range: "" stays "", "\0" (from key) becomes the prefix's end.
  std::string AddPrefixEnd(const std::string& range_end) const;
  std::string StripPrefix(const std::string& key) const;

  WatchManager& watch_manager();
  LeaseKeeper& lease_keeper();

 private:
  explicit Core(const ClientOptions& options);
  std::shared_ptr<Endpoint> MakeEndpoint(const std::string& address);
  void AutoSyncTick();

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> in_process_channel_;  // set: the only channel (in-process)
  std::shared_ptr<grpc::ChannelCredentials> creds_;
  grpc::ChannelArguments channel_args_;
  Executor executor_;
  std::atomic<bool> closed_{false};

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Endpoint>> endpoints_;
  std::map<std::string, std::shared_ptr<Endpoint>> extra_endpoints_;
  size_t current_ = 0;
  std::string token_;
  std::mutex auth_mu_;  // serializes token refreshes
  std::shared_ptr<WatchManager> watch_manager_;
  std::shared_ptr<LeaseKeeper> lease_keeper_;
  uint64_t rng_state_;
};

// ---- unary calls with retry -----------------------------------------------------------------

class UnaryCallBase : public std::enable_shared_from_this<UnaryCallBase> {
 public:
  UnaryCallBase(std::shared_ptr<Core> core, RpcClass cls, const CallOptions& call,
                std::string fixed_endpoint);
  virtual ~UnaryCallBase();
  void Start();
  void Cancel();

 protected:
  virtual void Issue(Endpoint& ep, grpc::ClientContext* ctx,
                     std::function<void(grpc::Status)> done) = 0;
  // Delivers the result: OK means the response message holds the answer.
  virtual void Deliver(absl::Status status) = 0;
  std::shared_ptr<Core> core_;

 private:
  void Attempt();
  void OnDone(const grpc::Status& s, const std::shared_ptr<Endpoint>& ep, const std::string& token,
              uint64_t attempt_id);
  void Finish(absl::Status status);

  RpcClass cls_;
  CallOptions call_;
  std::string fixed_endpoint_;
  Clock::time_point deadline_;
  std::mutex mu_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  bool finished_ = false;
  bool canceled_ = false;
  int attempts_ = 0;
  int auth_refreshes_ = 0;
  uint64_t attempt_id_ = 0;
  uint64_t cancel_reg_ = 0;
  absl::Status last_error_;
};

template <typename Req, typename Resp, typename Out>
class UnaryCall final : public UnaryCallBase {
 public:
  using Invoke = std::function<void(Endpoint&, grpc::ClientContext*, const Req*, Resp*,
                                    std::function<void(grpc::Status)>)>;
  using Convert = std::function<absl::StatusOr<Out>(Resp&)>;

  UnaryCall(std::shared_ptr<Core> core, RpcClass cls, const CallOptions& call,
            std::string fixed_endpoint, Req req, Invoke invoke, Convert convert)
      : UnaryCallBase(std::move(core), cls, call, std::move(fixed_endpoint)),
        req_(std::move(req)),
        invoke_(std::move(invoke)),
        convert_(std::move(convert)) {}

  Future<Out> future() { return promise_.future(); }
  void BindCancel() {
    std::weak_ptr<UnaryCallBase> weak = shared_from_this();
    promise_.SetCancel([weak] {
      if (auto self = weak.lock()) self->Cancel();
    });
  }

 protected:
  void Issue(Endpoint& ep, grpc::ClientContext* ctx,
             std::function<void(grpc::Status)> done) override {
    resp_.Clear();
    invoke_(ep, ctx, &req_, &resp_, std::move(done));
  }
  void Deliver(absl::Status status) override {
    if (!status.ok()) {
      promise_.Set(std::move(status));
      return;
    }
    promise_.Set(convert_(resp_));
  }

 private:
  Req req_;
  Resp resp_;
  Invoke invoke_;
  Convert convert_;
  Promise<Out> promise_;
};

// Starts a unary call with the client's retry policy. `fixed_endpoint` non-empty pins the call
// to that endpoint (no failover).
template <typename Req, typename Resp, typename Out>
Future<Out> StartUnary(const std::shared_ptr<Core>& core, RpcClass cls, const CallOptions& call,
                       Req req, typename UnaryCall<Req, Resp, Out>::Invoke invoke,
                       typename UnaryCall<Req, Resp, Out>::Convert convert,
                       std::string fixed_endpoint = "") {
  auto c = std::make_shared<UnaryCall<Req, Resp, Out>>(core, cls, call, std::move(fixed_endpoint),
                                                       std::move(req), std::move(invoke),
                                                       std::move(convert));
  Future<Out> f = c->future();
  c->BindCancel();
  c->Start();
  return f;
}

// Response header conversion shared by the API files.
template <typename H>
void CopyHeader(const etcdserverpb::ResponseHeader& from, H* to) {
  to->cluster_id = from.cluster_id();
  to->member_id = from.member_id();
  to->revision = from.revision();
  to->raft_term = from.raft_term();
}

}  // namespace cairn::internal

// Invoke lambda for a stub method: CAIRN_RPC(kv, Range).
#define CAIRN_RPC(stub, Method)                                                                \
  [](::cairn::internal::Endpoint& ep, ::grpc::ClientContext* ctx, const auto* req, auto* resp, \
     std::function<void(::grpc::Status)> done) {                                               \
    ep.stub->async()->Method(ctx, req, resp, std::move(done));                                 \
  }
