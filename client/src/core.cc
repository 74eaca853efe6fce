#include "client/src/core.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "cairn/errors.h"
#include "client/src/lease_keeper.h"
#include "client/src/watch_manager.h"

namespace cairn::internal {

// ---- Executor -------------------------------------------------------------------------------

Executor::Executor() : thread_([this] { Loop(); }) {}

Executor::~Executor() { Shutdown(); }

void Executor::PostAt(Clock::time_point at, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) {
      // After shutdown, run inline: tasks see Core::closed() and finish their calls.
      at = Clock::time_point::min();
    } else {
      tasks_.emplace(at, std::move(fn));
      cv_.notify_one();
      return;
    }
  }
  fn();
}

void Executor::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void Executor::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (stop_) {
      // Drain: run every pending task now so that no call is left without a result.
      while (!tasks_.empty()) {
        auto fn = std::move(tasks_.begin()->second);
        tasks_.erase(tasks_.begin());
        lock.unlock();
        fn();
        lock.lock();
      }
      return;
    }
    if (tasks_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto at = tasks_.begin()->first;
    if (Clock::now() < at) {
      cv_.wait_until(lock, at);
      continue;
    }
    auto fn = std::move(tasks_.begin()->second);
    tasks_.erase(tasks_.begin());
    lock.unlock();
    fn();
    lock.lock();
  }
}

// ---- status helpers ---------------------------------------------------------------------------

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

bool IsAuthError(const absl::Status& s) {
  switch (ErrorKindOf(s)) {
    case ErrorKind::kInvalidAuthToken:
    case ErrorKind::kAuthOldRevision:
    case ErrorKind::kUserEmpty:
      return true;
    default:
      return false;
  }
}

bool NeverReachedServer(const absl::Status& s) {
  if (s.code() != absl::StatusCode::kUnavailable) return false;
  // gRPC reports these when no transport could be set up, i.e. nothing was sent. A connection
  // that broke after the request was written reports "Socket closed", "Connection reset",
  // "Broken pipe" and so on, which do not match.
  static const char* const kNoConnection[] = {
      "failed to connect to all addresses",
      "Failed to connect to remote host",
      "Connection refused",
      "DNS resolution failed",
      "no address available",
      "no connection available",
      "Empty update",
      "channel is shutdown",
  };
  for (const char* m : kNoConnection) {
    if (s.message().find(m) != std::string_view::npos) return true;
  }
  return false;
}

std::string NormalizeEndpoint(const std::string& url) {
  std::string out = url;
  for (const char* scheme : {"http://", "https://", "unix://"}) {
    if (out.rfind(scheme, 0) == 0) {
      out = out.substr(std::string(scheme).size());
      break;
    }
  }
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t ToNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

// ---- Core ---------------------------------------------------------------------------------------

Core::Core(const ClientOptions& options)
    : options_(options),
      rng_state_(static_cast<uint64_t>(Clock::now().time_since_epoch().count()) | 1) {}

Core::~Core() { Shutdown(); }

namespace {

// gRPC 1.51 runs callback-API completions on a process-wide "callback alternative" completion
// queue whose threads stop when the last channel that used it is destroyed. A client's last
// channel is often destroyed from one of those very threads (the final completion drops the
// last reference), which makes gRPC stop the queue from inside itself and abort. One channel
// that used the queue and lives for the whole process keeps it running.
struct PinnedCall {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> stub;
  grpc::ClientContext ctx;
  etcdserverpb::RangeRequest req;
  etcdserverpb::RangeResponse resp;
};
// Never freed, and reachable from here for the whole process (so not a leak to LeakSanitizer).
PinnedCall* g_pinned_call = nullptr;

void PinCallbackCompletionQueue() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_pinned_call = new PinnedCall();
    PinnedCall* p = g_pinned_call;
    p->channel = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
    p->stub = etcdserverpb::KV::NewStub(p->channel);
    p->ctx.set_deadline(std::chrono::system_clock::now());
    p->stub->async()->Range(&p->ctx, &p->req, &p->resp, [](grpc::Status) {});
  });
}

}  // namespace

absl::StatusOr<std::shared_ptr<Core>> Core::Create(const ClientOptions& options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no endpoints given");
  PinCallbackCompletionQueue();
  std::shared_ptr<Core> core(new Core(options));
  bool tls = options.tls.enabled;
  for (const auto& e : options.endpoints) {
    if (e.rfind("https://", 0) == 0) tls = true;
  }
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    const TlsOptions& t = options.tls;
    if (!t.ca_pem.empty()) {
      ssl.pem_root_certs = t.ca_pem;
    } else if (!t.ca_file.empty()) {
      auto pem = ReadFile(t.ca_file);
      if (!pem.ok()) return pem.status();
      ssl.pem_root_certs = *pem;
    }
    if (!t.cert_pem.empty()) {
      ssl.pem_cert_chain = t.cert_pem;
    } else if (!t.cert_file.empty()) {
      auto pem = ReadFile(t.cert_file);
      if (!pem.ok()) return pem.status();
      ssl.pem_cert_chain = *pem;
    }
    if (!t.key_pem.empty()) {
      ssl.pem_private_key = t.key_pem;
    } else if (!t.key_file.empty()) {
      auto pem = ReadFile(t.key_file);
      if (!pem.ok()) return pem.status();
      ssl.pem_private_key = *pem;
    }
    if (ssl.pem_cert_chain.empty() != ssl.pem_private_key.empty()) {
      return absl::InvalidArgumentError("TLS client certificate and key must be given together");
    }
    core->creds_ = grpc::SslCredentials(ssl);
    if (!t.server_name_override.empty()) {
      core->channel_args_.SetSslTargetNameOverride(t.server_name_override);
    }
  } else {
    core->creds_ = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments& args = core->channel_args_;
  if (options.keepalive_time.count() > 0) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options.keepalive_time.count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(options.keepalive_timeout.count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, options.keepalive_without_stream ? 1 : 0);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  // Reconnect quickly after a server restart; the client's own backoff spaces the calls.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxSendMessageSize(options.max_send_message_bytes > 0 ? options.max_send_message_bytes
                                                                : -1);
  args.SetMaxReceiveMessageSize(
      options.max_receive_message_bytes > 0 ? options.max_receive_message_bytes : -1);
  // Each Core gets its own subchannels so that two clients never share a broken connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  {
    std::lock_guard<std::mutex> lock(core->mu_);
    for (const auto& e : options.endpoints) {
      core->endpoints_.push_back(core->MakeEndpoint(NormalizeEndpoint(e)));
    }
  }
  Clock::time_point dial_deadline = Clock::now() + options.dial_timeout;
  if (options.wait_for_connection || core->has_credentials()) {
    absl::Status st = core->WaitForAnyConnection(dial_deadline);
    if (!st.ok()) return st;
  }
  if (core->has_credentials()) {
    absl::Status st = core->Authenticate(dial_deadline);
    if (!st.ok()) return st;
  }
  if (options.auto_sync_interval.count() > 0) {
    std::weak_ptr<Core> weak = core;
    core->executor_.PostAt(Clock::now() + options.auto_sync_interval, [weak] {
      if (auto c = weak.lock()) c->AutoSyncTick();
    });
  }
  return core;
}

absl::StatusOr<std::shared_ptr<Core>> Core::CreateInProcess(std::shared_ptr<grpc::Channel> channel,
                                                            const ClientOptions& options,
                                                            const std::string& fixed_token) {
  if (channel == nullptr) return absl::InvalidArgumentError("no in-process channel");
  PinCallbackCompletionQueue();
  ClientOptions opts = options;
  opts.endpoints = {"in-process"};
  opts.auto_sync_interval = std::chrono::milliseconds(0);
  opts.tls = TlsOptions();
  std::shared_ptr<Core> core(new Core(opts));
  core->in_process_channel_ = std::move(channel);
  {
    std::lock_guard<std::mutex> lock(core->mu_);
    core->endpoints_.push_back(core->MakeEndpoint(opts.endpoints[0]));
    core->token_ = fixed_token;
  }
  if (core->has_credentials()) {
    absl::Status st = core->Authenticate(Clock::now() + opts.dial_timeout);
    if (!st.ok()) return st;
  }
  return core;
}

void Core::AutoSyncTick() {
  if (closed()) return;
  etcdserverpb::MemberListRequest req;
  etcdserverpb::MemberListResponse resp;
  grpc::ClientContext ctx;
  auto ep = Current();
  PrepareContext(&ctx, Clock::now() + options_.default_timeout, false);
  grpc::Status s = ep->cluster->MemberList(&ctx, req, &resp);
  if (s.ok()) {
    std::vector<std::string> eps;
    for (const auto& m : resp.members()) {
      for (const auto& u : m.clienturls()) eps.push_back(u);
    }
    if (!eps.empty()) SetEndpoints(eps);
  } else if (FromGrpc(s).code() == absl::StatusCode::kUnavailable) {
    ReportFailure(ep);
  }
  std::weak_ptr<Core> weak = shared_from_this();
  executor_.PostAt(Clock::now() + options_.auto_sync_interval, [weak] {
    if (auto c = weak.lock()) c->AutoSyncTick();
  });
}

void Core::Shutdown() {
  if (closed_.exchange(true)) return;
  std::shared_ptr<WatchManager> wm;
  std::shared_ptr<LeaseKeeper> lk;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wm = watch_manager_;
    lk = lease_keeper_;
  }
  if (wm) wm->Shutdown();
  if (lk) lk->Shutdown();
  executor_.Shutdown();
}

std::shared_ptr<Endpoint> Core::MakeEndpoint(const std::string& address) {
  auto ep = std::make_shared<Endpoint>();
  ep->address = address;
  ep->channel = in_process_channel_ != nullptr
                    ? in_process_channel_
                    : grpc::CreateCustomChannel(address, creds_, channel_args_);
  ep->kv = etcdserverpb::KV::NewStub(ep->channel);
  ep->watch = etcdserverpb::Watch::NewStub(ep->channel);
  ep->lease = etcdserverpb::Lease::NewStub(ep->channel);
  ep->cluster = etcdserverpb::Cluster::NewStub(ep->channel);
  ep->maintenance = etcdserverpb::Maintenance::NewStub(ep->channel);
  ep->auth = etcdserverpb::Auth::NewStub(ep->channel);
  return ep;
}

std::shared_ptr<Endpoint> Core::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = ToNs(Clock::now());
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    size_t idx = (current_ + i) % endpoints_.size();
    if (endpoints_[idx]->bad_until_ns.load() <= now) {
      current_ = idx;
      return endpoints_[idx];
    }
  }
  // All failed recently: try the one that failed longest ago.
  size_t best = current_;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i]->bad_until_ns.load() < endpoints_[best]->bad_until_ns.load()) best = i;
  }
  current_ = best;
  return endpoints_[best];
}

std::shared_ptr<Endpoint> Core::EndpointFor(const std::string& address) {
  std::string a = NormalizeEndpoint(address);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& ep : endpoints_) {
    if (ep->address == a) return ep;
  }
  auto it = extra_endpoints_.find(a);
  if (it != extra_endpoints_.end()) return it->second;
  auto ep = MakeEndpoint(a);
  extra_endpoints_[a] = ep;
  return ep;
}

void Core::ReportFailure(const std::shared_ptr<Endpoint>& ep) {
  std::lock_guard<std::mutex> lock(mu_);
  ep->bad_until_ns.store(ToNs(Clock::now() + std::chrono::seconds(1)));
  if (!endpoints_.empty() && endpoints_[current_ % endpoints_.size()] == ep) {
    current_ = (current_ + 1) % endpoints_.size();
  }
}

std::vector<std::string> Core::Endpoints() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& ep : endpoints_) out.push_back(ep->address);
  return out;
}

void Core::SetEndpoints(const std::vector<std::string>& endpoints) {
  if (endpoints.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  std::string current = endpoints_.empty() ? "" : endpoints_[current_]->address;
  std::vector<std::shared_ptr<Endpoint>> next;
  for (const auto& raw : endpoints) {
    std::string a = NormalizeEndpoint(raw);
    std::shared_ptr<Endpoint> found;
    for (const auto& ep : endpoints_) {
      if (ep->address == a) found = ep;
    }
    if (!found) {
      auto it = extra_endpoints_.find(a);
      if (it != extra_endpoints_.end()) found = it->second;
    }
    if (!found) found = MakeEndpoint(a);
    bool dup = false;
    for (const auto& ep : next) dup = dup || ep->address == a;
    if (!dup) next.push_back(found);
  }
  endpoints_ = std::move(next);
  current_ = 0;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i]->address == current) current_ = i;
  }
}

absl::Status Core::WaitForAnyConnection(Clock::time_point deadline) {
  std::vector<std::shared_ptr<Endpoint>> eps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    eps = endpoints_;
  }
  for (auto& ep : eps) ep->channel->GetState(/*try_to_connect=*/true);
  while (Clock::now() < deadline) {
    for (size_t i = 0; i < eps.size(); ++i) {
      if (eps[i]->channel->GetState(true) == GRPC_CHANNEL_READY) {
        std::lock_guard<std::mutex> lock(mu_);
        for (size_t j = 0; j < endpoints_.size(); ++j) {
          if (endpoints_[j] == eps[i]) current_ = j;
        }
        return absl::OkStatus();
      }
    }
    // Wait for any state change of the first endpoint, bounded to poll the others too.
    auto step = std::min(deadline, Clock::now() + std::chrono::milliseconds(50));
    eps[0]->channel->WaitForStateChange(eps[0]->channel->GetState(false), ToGrpcTime(step));
  }
  return absl::UnavailableError("no endpoint reachable within dial_timeout");
}

std::string Core::token() const {
  std::lock_guard<std::mutex> lock(mu_);
  return token_;
}

absl::Status Core::Authenticate(Clock::time_point deadline) {
  etcdserverpb::AuthenticateRequest req;
  req.set_name(options_.username);
  req.set_password(options_.password);
  absl::Status last = absl::UnavailableError("no endpoint");
  for (int attempt = 0; Clock::now() < deadline; ++attempt) {
    if (closed()) return absl::CancelledError("client closed");
    auto ep = Current();
    grpc::ClientContext ctx;
    ctx.set_deadline(ToGrpcTime(deadline));
    etcdserverpb::AuthenticateResponse resp;
    grpc::Status s = ep->auth->Authenticate(&ctx, req, &resp);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      token_ = resp.token();
      return absl::OkStatus();
    }
    last = FromGrpc(s);
    if (last.code() != absl::StatusCode::kUnavailable) return last;
    ReportFailure(ep);
    auto wake = std::min(deadline, Clock::now() + Backoff(attempt));
    std::this_thread::sleep_until(wake);  // a timer, not a condition poll: this is the backoff
  }
  return last;
}

absl::Status Core::RefreshToken(const std::string& failed_token, Clock::time_point deadline) {
  if (!has_credentials()) return absl::UnauthenticatedError("no credentials to refresh the token");
  std::lock_guard<std::mutex> serialize(auth_mu_);
  if (token() != failed_token) return absl::OkStatus();  // someone refreshed meanwhile
  return Authenticate(deadline);
}

std::string Core::PrepareContext(grpc::ClientContext* ctx, Clock::time_point deadline,
                                 bool require_leader) {
  if (deadline != Clock::time_point::max()) ctx->set_deadline(ToGrpcTime(deadline));
  std::string tok = token();
  if (!tok.empty()) ctx->AddMetadata("token", tok);
  if (require_leader) ctx->AddMetadata("hasleader", "true");
  return tok;
}

Clock::time_point Core::DeadlineFor(const CallOptions& call) const {
  auto timeout = call.timeout.count() > 0 ? call.timeout : options_.default_timeout;
  Clock::time_point d = call.deadline;
  if (timeout.count() > 0) d = std::min(d, Clock::now() + timeout);
  return d;
}

std::chrono::nanoseconds Core::Backoff(int attempt) {
  auto base = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.backoff_base);
  auto max = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.backoff_max);
  auto d = base * (int64_t{1} << std::min(attempt, 20));
  if (d > max || d.count() <= 0) d = max;
  uint64_t r;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // xorshift64: jitter only, not security.
    rng_state_ ^= rng_state_ << 13;
    rng_state_ ^= rng_state_ >> 7;
    rng_state_ ^= rng_state_ << 17;
    r = rng_state_;
  }
  double unit = static_cast<double>(r % 1000000) / 1000000.0;  // [0, 1)
  double factor = 1.0 + options_.backoff_jitter_fraction * (2.0 * unit - 1.0);
  return std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(d.count()) * factor));
}

std::string Core::AddPrefixEnd(const std::string& range_end) const {
  if (range_end.empty()) return range_end;
  if (options_.key_prefix.empty()) return range_end;
  if (range_end == std::string(1, '\0')) return PrefixEnd(options_.key_prefix);
  return options_.key_prefix + range_end;
}

std::string Core::StripPrefix(const std::string& key) const {
  const std::string& p = options_.key_prefix;
  if (!p.empty() && key.compare(0, p.size(), p) == 0) return key.substr(p.size());
  return key;
}

WatchManager& Core::watch_manager() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!watch_manager_) watch_manager_ = std::make_shared<WatchManager>(weak_from_this());
  return *watch_manager_;
}

LeaseKeeper& Core::lease_keeper() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!lease_keeper_) lease_keeper_ = std::make_shared<LeaseKeeper>(weak_from_this());
  return *lease_keeper_;
}

// ---- UnaryCallBase ------------------------------------------------------------------------------

UnaryCallBase::UnaryCallBase(std::shared_ptr<Core> core, RpcClass cls, const CallOptions& call,
                             std::string fixed_endpoint)
    : core_(std::move(core)),
      cls_(cls),
      call_(call),
      fixed_endpoint_(std::move(fixed_endpoint)),
      deadline_(core_->DeadlineFor(call)) {}

UnaryCallBase::~UnaryCallBase() = default;

void UnaryCallBase::Start() {
  if (!call_.cancel.empty()) {
    std::weak_ptr<UnaryCallBase> weak = shared_from_this();
    uint64_t reg = call_.cancel.Register([weak] {
      if (auto self = weak.lock()) self->Cancel();
    });
    std::lock_guard<std::mutex> lock(mu_);
    cancel_reg_ = reg;
  }
  Attempt();
}

void UnaryCallBase::Cancel() {
  bool finish = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || canceled_) return;
    canceled_ = true;
    if (ctx_) {
      ctx_->TryCancel();  // OnDone finishes the call with CANCELLED
    } else {
      finish = true;  // between attempts
    }
  }
  if (finish) Finish(absl::CancelledError("call canceled"));
}

void UnaryCallBase::Attempt() {
  if (core_->closed()) {
    Finish(absl::CancelledError("client closed"));
    return;
  }
  std::shared_ptr<Endpoint> ep =
      fixed_endpoint_.empty() ? core_->Current() : core_->EndpointFor(fixed_endpoint_);
  grpc::ClientContext* ctx = nullptr;
  std::string tok;
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    if (!canceled_) {
      ctx_ = std::make_unique<grpc::ClientContext>();
      ctx = ctx_.get();
      tok = core_->PrepareContext(ctx, deadline_, call_.require_leader);
      id = ++attempt_id_;
      ++attempts_;
    }
  }
  if (ctx == nullptr) {
    Finish(absl::CancelledError("call canceled"));
    return;
  }
  auto self = shared_from_this();
  Issue(*ep, ctx, [self, ep, tok, id](grpc::Status s) { self->OnDone(s, ep, tok, id); });
}

void UnaryCallBase::OnDone(const grpc::Status& gs, const std::shared_ptr<Endpoint>& ep,
                           const std::string& token, uint64_t attempt_id) {
  absl::Status s = FromGrpc(gs);
  bool canceled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (attempt_id != attempt_id_ || finished_) return;
    ctx_.reset();
    canceled = canceled_;
  }
  if (s.ok()) {
    Finish(absl::OkStatus());
    return;
  }
  if (canceled) {
    Finish(absl::CancelledError("call canceled"));
    return;
  }
  auto now = Clock::now();
  if (s.code() == absl::StatusCode::kDeadlineExceeded || now >= deadline_) {
    // A member that took the request and did not answer in time (paused, cut off with its
    // connection open, overloaded) is left for a while: the next call goes to another endpoint.
    if (s.code() == absl::StatusCode::kDeadlineExceeded && fixed_endpoint_.empty()) {
      core_->ReportFailure(ep);
    }
    std::string msg = "deadline exceeded";
    if (!last_error_.ok()) msg += " (last error: " + std::string(last_error_.message()) + ")";
    if (s.code() != absl::StatusCode::kDeadlineExceeded) msg += "; " + std::string(s.message());
    Finish(absl::DeadlineExceededError(msg));
    return;
  }
  last_error_ = s;
  // An auth error means the server rejected the request before executing it: refresh the
  // token and retry, whatever the RPC class.
  if (IsAuthError(s) && core_->has_credentials() && auth_refreshes_ < 2) {
    ++auth_refreshes_;
    auto self = shared_from_this();
    core_->executor().Post([self, token] {
      absl::Status rs = self->core_->RefreshToken(token, self->deadline_);
      if (!rs.ok()) {
        self->Finish(rs);
        return;
      }
      self->Attempt();
    });
    return;
  }
  if (s.code() != absl::StatusCode::kUnavailable) {
    Finish(s);
    return;
  }
  if (fixed_endpoint_.empty()) core_->ReportFailure(ep);
  bool retry;
  switch (call_.retry) {
    case RetryMode::kNever:
      retry = false;
      break;
    case RetryMode::kIdempotent:
      retry = true;
      break;
    default:
      retry = cls_ == RpcClass::kRead || NeverReachedServer(s);
  }
  if (!retry) {
    Finish(s);
    return;
  }
  auto wake = now + core_->Backoff(attempts_ - 1);
  if (wake >= deadline_) {
    Finish(absl::DeadlineExceededError(
        "deadline exceeded (last error: " + std::string(s.message()) + ")"));
    return;
  }
  auto self = shared_from_this();
  core_->executor().PostAt(wake, [self] { self->Attempt(); });
}

void UnaryCallBase::Finish(absl::Status status) {
  uint64_t reg;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
    reg = cancel_reg_;
    ctx_.reset();
  }
  if (reg != 0) call_.cancel.Unregister(reg);
  Deliver(std::move(status));
}

}  // namespace cairn::internal
