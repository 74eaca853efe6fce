#include "bench/load/engine.h"

#include "etcdserverpb/rpc.grpc.pb.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

namespace cairn::bench {
namespace {

// gRPC deadlines and alarms take system_clock times; the engine schedules in steady time.
std::chrono::system_clock::time_point ToSystem(Clock::time_point t) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(t - Clock::now());
}

}  // namespace

Budget::Budget(int64_t total, double duration_s, double rate)
    : total_(total), duration_s_(duration_s), rate_(rate) {}

void Budget::Start() {
  start_ = Clock::now();
  deadline_ = duration_s_ > 0 ? start_ + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(duration_s_))
                              : Clock::time_point::max();
}

bool Budget::Take(int64_t* index, Clock::time_point* when) {
  int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
  if (total_ > 0 && i >= total_) return false;
  Clock::time_point now = Clock::now();
  if (now >= deadline_) return false;
  *index = i;
  if (rate_ > 0) {
    *when = start_ + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(static_cast<double>(i) / rate_));
    if (*when >= deadline_) return false;
  } else {
    *when = now;
  }
  return true;
}

Engine::Engine(EngineOptions options) : options_(std::move(options)) {
  if (options_.threads < 1) options_.threads = 1;
  if (options_.conns < 1) options_.conns = 1;
  for (int t = 0; t < options_.threads; ++t) {
    cqs_.push_back(std::make_unique<grpc::CompletionQueue>());
  }
  recorders_.resize(options_.threads);
}

Engine::~Engine() { Stop(); }

std::string Engine::Connect(double timeout_s) {
  for (int i = 0; i < options_.conns; ++i) {
    grpc::ChannelArguments args;
    // A distinct argument and a private subchannel pool give each channel its own connection.
    args.SetInt("cairn.bench.conn", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // No transparent retries: each operation is one attempt, counted as it ends (and the retry
    // filter's buffering costs client CPU).
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    const std::string& target = options_.endpoints[i % options_.endpoints.size()];
    channels_.push_back(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }
  auto deadline = std::chrono::system_clock::now() +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(
                      std::chrono::duration<double>(timeout_s));
  for (int i = 0; i < options_.conns; ++i) {
    if (!channels_[i]->WaitForConnected(deadline)) {
      return "cannot connect to " + options_.endpoints[i % options_.endpoints.size()];
    }
  }
  return options_.user.empty() ? "" : Authenticate(timeout_s);
}

std::string Engine::Authenticate(double timeout_s) {
  auto stub = etcdserverpb::Auth::NewStub(channels_[0]);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::duration_cast<std::chrono::system_clock::duration>(
                       std::chrono::duration<double>(timeout_s)));
  etcdserverpb::AuthenticateRequest req;
  req.set_name(options_.user);
  req.set_password(options_.password);
  etcdserverpb::AuthenticateResponse resp;
  grpc::Status st = stub->Authenticate(&ctx, req, &resp);
  if (!st.ok()) return "authenticate " + options_.user + ": " + st.error_message();
  token_ = resp.token();
  return "";
}

void Engine::StartThreads() {
  for (int t = 0; t < options_.threads; ++t) {
    threads_.emplace_back([this, t] { Loop(t); });
  }
}

void Engine::Loop(int thread) {
  void* raw = nullptr;
  bool ok = false;
  while (cqs_[thread]->Next(&raw, &ok)) {
    Tag* t = static_cast<Tag*>(raw);
    t->client->OnEvent(t->kind, ok);
  }
}

void Engine::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& cq : cqs_) cq->Shutdown();
  for (auto& th : threads_) th.join();
  threads_.clear();
}

void Engine::Launch(Client* client, int group) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++active_[group];
  }
  client->Kickoff(group);
}

void Engine::ClientDone(int group) {
  std::lock_guard<std::mutex> lock(mu_);
  if (--active_[group] == 0) idle_cv_.notify_all();
}

void Engine::WaitIdle(int group) {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this, group] { return active_[group] == 0; });
}

bool Engine::WaitIdleFor(double seconds, int group) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                           [this, group] { return active_[group] == 0; });
}

std::vector<const Recorder*> Engine::recorders(Metric m) const {
  std::vector<const Recorder*> out;
  for (const auto& per_thread : recorders_) out.push_back(&per_thread[m]);
  return out;
}

Client::Client(Engine* engine, int id)
    : engine_(engine),
      id_(id),
      thread_(id % engine->threads()),
      cq_(engine->cq(id % engine->threads())),
      channel_(engine->channel(id % engine->conns())),
      rng_(0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(id + 1)) {
  for (int k = 0; k < kMaxTags; ++k) tags_[k] = Tag{this, k};
}

void Client::Kickoff(int group) {
  group_ = group;
  alarm_.Set(cq_, std::chrono::system_clock::now(), tag(kStartTag));
}

std::unique_ptr<grpc::ClientContext> Client::NewContext() const {
  auto ctx = NewStreamContext();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        std::chrono::duration<double>(engine_->request_timeout_s())));
  return ctx;
}

std::unique_ptr<grpc::ClientContext> Client::NewStreamContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!engine_->token().empty()) ctx->AddMetadata("token", engine_->token());
  return ctx;
}

void ClosedLoopClient::OnEvent(int kind, bool ok) {
  if (kind == kStartTag) {
    Start();
  } else if (kind == kAlarmTag) {
    began_ = Clock::now();
    BeginOp(index_);
  } else {
    OnRpc(kind, ok);
  }
}

void ClosedLoopClient::Next() {
  Clock::time_point when;
  if (!budget_->Take(&index_, &when)) {
    Close();
    return;
  }
  if (when > Clock::now()) {
    // Latency is counted from the actual send, as etcd's benchmark does under --rate.
    alarm_.Set(cq_, ToSystem(when), tag(kAlarmTag));
    return;
  }
  began_ = Clock::now();
  BeginOp(index_);
}

void ClosedLoopClient::OpDone(const grpc::Status& status) {
  if (status.ok()) {
    recorder(kOps).RecordOk(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - began_).count());
  } else {
    recorder(kOps).RecordError(status.error_code());
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      Close();
      return;
    }
  }
  Next();
}

}  // namespace cairn::bench
