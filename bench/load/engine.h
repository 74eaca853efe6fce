// The asynchronous engine of cairn-bench: channels, completion-queue threads, per-thread
// recorders, an operation budget (total or duration, optional target rate) and the Client base
// classes that run one logical benchmark client as a state machine on one completion queue.
//
// Threading: every Client is bound to one completion queue, drained by one thread; all of a
// client's handlers run on that thread, so a client needs no locks. Clients are started by an
// alarm posted to their queue, so even their first step runs there. Client objects must outlive
// Engine::Stop (which drains the queues).
#ifndef CAIRN_BENCH_LOAD_ENGINE_H_
#define CAIRN_BENCH_LOAD_ENGINE_H_

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/load/stats.h"

namespace cairn::bench {

using Clock = std::chrono::steady_clock;

// Hands out operation indexes [0, total) or until a deadline, each with the time it is
// scheduled to be sent (now, or start + index / rate under a target rate). Thread-safe.
class Budget {
 public:
  // total <= 0 means unlimited (then duration_s must be > 0); rate <= 0 means unlimited.
  Budget(int64_t total, double duration_s, double rate);

  // Marks the start; call before any Take.
  void Start();
  // Returns false when the budget is spent. Otherwise sets the index and scheduled send time.
  bool Take(int64_t* index, Clock::time_point* when);

 private:
  const int64_t total_;
  const double duration_s_;
  const double rate_;
  Clock::time_point start_;
  Clock::time_point deadline_;
  std::atomic<int64_t> next_{0};
};

// Indexes of the per-thread recorders.
enum Metric { kOps = 0, kEvents = 1, kMetricCount = 2 };

struct EngineOptions {
  std::vector<std::string> endpoints;
  int conns = 1;
  int threads = 1;
  double request_timeout_s = 30;
  // Auth: with a user, Connect authenticates once and every request carries the token (simple or
  // JWT, whatever the server issues), as etcd's benchmark tool does with --user.
  std::string user;
  std::string password;
};

class Client;

class Engine {
 public:
  explicit Engine(EngineOptions options);
  ~Engine();

  // Creates `conns` channels (each its own TCP connection, round-robin over the endpoints) and
  // waits until each is connected, then authenticates when a user is set. Returns an error
  // message, or "" on success.
  std::string Connect(double timeout_s);
  // Starts the completion-queue threads.
  void StartThreads();
  // Shuts the queues down, drains them and joins the threads.
  void Stop();

  // Starts a client on its queue (the client's Start runs on the queue's thread). Clients are
  // counted per group (0 or 1) so that one group can be waited for while the other runs.
  void Launch(Client* client, int group = 0);
  // Blocks until every launched client of the group has called Done.
  void WaitIdle(int group = 0);
  // Like WaitIdle, with a bound; returns false on timeout.
  bool WaitIdleFor(double seconds, int group = 0);

  int threads() const { return options_.threads; }
  int conns() const { return static_cast<int>(channels_.size()); }
  double request_timeout_s() const { return options_.request_timeout_s; }
  // The auth token every request carries ("" without --user); set by Connect.
  const std::string& token() const { return token_; }
  const std::shared_ptr<grpc::Channel>& channel(int i) const { return channels_[i]; }
  grpc::CompletionQueue* cq(int thread) { return cqs_[thread].get(); }
  Recorder& recorder(int thread, Metric m) { return recorders_[thread][m]; }
  std::vector<const Recorder*> recorders(Metric m) const;

  // Called by a client when it has finished and no operation of it is outstanding.
  void ClientDone(int group);

 private:
  void Loop(int thread);

  std::string Authenticate(double timeout_s);

  EngineOptions options_;
  std::string token_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs_;
  std::vector<std::array<Recorder, kMetricCount>> recorders_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::array<int, 2> active_{};  // per group; guarded by mu_
  bool stopped_ = false;
};

// A tag on a completion queue: which client, and which of its steps completed.
struct Tag {
  Client* client;
  int kind;
};

// One logical benchmark client. Subclasses implement Start and OnEvent.
class Client {
 public:
  // Client number `id` uses thread id % threads and connection id % conns.
  Client(Engine* engine, int id);
  virtual ~Client() = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // First step; runs on the client's thread.
  virtual void Start() = 0;
  // A completion of tag kind `kind` (kinds >= kFirstUserTag are the subclass's).
  virtual void OnEvent(int kind, bool ok) = 0;

  // Tag kinds used by the base classes.
  static constexpr int kStartTag = 0;
  static constexpr int kAlarmTag = 1;
  static constexpr int kFirstUserTag = 2;
  static constexpr int kMaxTags = 8;

  // Posts the start alarm; called by Engine::Launch.
  void Kickoff(int group);

 protected:
  void* tag(int kind) { return &tags_[kind]; }
  Recorder& recorder(Metric m) { return engine_->recorder(thread_, m); }
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // A context with the auth token and no deadline, for a stream.
  std::unique_ptr<grpc::ClientContext> NewStreamContext() const;
  // Reports this client finished; it must have no outstanding operation.
  void Done() { engine_->ClientDone(group_); }

  Engine* const engine_;
  const int id_;
  const int thread_;
  grpc::CompletionQueue* const cq_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::Alarm alarm_;
  std::mt19937_64 rng_;

 private:
  int group_ = 0;
  std::array<Tag, kMaxTags> tags_;
};

// A client that runs operations one after another, taking indexes from a Budget, until the budget
// is spent. Subclasses implement BeginOp (start the operation for an index) and OnRpc (a
// completion of one of their tags) and call OpDone when the operation finishes. An operation that
// fails with UNIMPLEMENTED stops the client: the server lacks the feature.
class ClosedLoopClient : public Client {
 public:
  ClosedLoopClient(Engine* engine, int id, Budget* budget) : Client(engine, id), budget_(budget) {}

  void Start() override { Setup(); }
  void OnEvent(int kind, bool ok) final;

 protected:
  // Runs before the first operation; the default starts it. Overrides call Next() when ready,
  // or Done() on failure.
  virtual void Setup() { Next(); }
  virtual void BeginOp(int64_t index) = 0;
  virtual void OnRpc(int kind, bool ok) = 0;
  // Called when the budget is spent; the default calls Done(). Overrides close streams first.
  virtual void Close() { Done(); }

  // Takes the next index and begins it (at once, or when its scheduled time comes).
  void Next();
  // Records the outcome of the current operation and moves to the next.
  void OpDone(const grpc::Status& status);

 private:
  Budget* const budget_;
  int64_t index_ = 0;
  Clock::time_point began_;
};

// A closed-loop client of one unary RPC. `fill` prepares the request for an index; `call`
// starts the RPC (e.g. stub->PrepareAsyncPut).
template <typename Req, typename Resp>
class UnaryClient : public ClosedLoopClient {
 public:
  using Fill = std::function<void(int64_t index, std::mt19937_64& rng, Req* req)>;
  using Call = std::function<std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>>(
      grpc::ClientContext*, const Req&, grpc::CompletionQueue*)>;

  UnaryClient(Engine* engine, int id, Budget* budget, Fill fill, Call call)
      : ClosedLoopClient(engine, id, budget), fill_(std::move(fill)), call_(std::move(call)) {}

 protected:
  void BeginOp(int64_t index) override {
    fill_(index, rng_, &req_);
    resp_.Clear();
    ctx_ = NewContext();
    reader_ = call_(ctx_.get(), req_, cq_);
    reader_->StartCall();
    reader_->Finish(&resp_, &status_, tag(kFirstUserTag));
  }
  void OnRpc(int, bool) override { OpDone(status_); }

 private:
  Fill fill_;
  Call call_;
  Req req_;
  Resp resp_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> reader_;
};

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_LOAD_ENGINE_H_
