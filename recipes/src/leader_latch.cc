#include "cairn/recipes/leader_latch.h"

#include <mutex>
#include <thread>
#include <vector>

#include "src/internal.h"

namespace cairn::recipes {

struct LeaderLatch::State {
  std::shared_ptr<Session> session;
  std::unique_ptr<Election> election;
  LeaderLatchOptions options;
  CancelToken stop = CancelToken::Make();
  std::thread thread;

  mutable std::mutex mu;
  std::optional<Grant> grant;
  absl::Status status;
  bool done = false;
  std::vector<Promise<Grant>> waiters;

  void Finish(const absl::Status& why) {
    std::vector<Promise<Grant>> w;
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
      if (status.ok()) status = why;
      w.swap(waiters);
    }
    for (auto& p : w) p.Set(why);
  }

  void Run() {
    CallOptions call;
    call.cancel = stop;
    auto g = election->Campaign(options.value, call);
    if (!g.ok()) {
      Finish(stop.canceled() ? absl::CancelledError("leader latch closed") : g.status());
      return;
    }
    std::vector<Promise<Grant>> w;
    {
      std::lock_guard<std::mutex> lock(mu);
      grant = *g;
      w.swap(waiters);
    }
    for (auto& p : w) p.Set(*g);
    if (options.on_leader) options.on_leader(*g);
    // Leader until the session ends or Close().
    absl::Status ended = session->Wait(call);
    {
      std::lock_guard<std::mutex> lock(mu);
      grant.reset();
    }
    if (stop.canceled()) (void)election->Resign();
    if (options.on_not_leader) options.on_not_leader();
    Finish(stop.canceled() ? absl::CancelledError("leader latch closed") : ended);
  }
};

absl::StatusOr<std::unique_ptr<LeaderLatch>> LeaderLatch::Start(std::shared_ptr<Session> session,
                                                                std::string name,
                                                                LeaderLatchOptions options) {
  if (absl::Status st = internal::CheckName(name, "leader latch"); !st.ok()) return st;
  if (absl::Status st = internal::CheckSession(*session); !st.ok()) return st;
  std::unique_ptr<LeaderLatch> latch(new LeaderLatch());
  latch->state_ = std::make_shared<State>();
  State* s = latch->state_.get();
  s->session = session;
  s->election = std::make_unique<Election>(session, std::move(name));
  s->options = std::move(options);
  s->thread = std::thread([s] { s->Run(); });
  return latch;
}

LeaderLatch::~LeaderLatch() { Close(); }

void LeaderLatch::Close() {
  if (!state_) return;
  state_->stop.Cancel();
  if (state_->thread.joinable()) state_->thread.join();
}

bool LeaderLatch::has_leadership() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->grant.has_value();
}

std::optional<Grant> LeaderLatch::leadership() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->grant;
}

absl::Status LeaderLatch::status() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->status;
}

absl::StatusOr<Grant> LeaderLatch::Await(const CallOptions& call) const {
  Promise<Grant> p;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->grant.has_value()) return *state_->grant;
    if (state_->done) return state_->status;
    state_->waiters.push_back(p);
  }
  uint64_t id = call.cancel.Register([p] { p.Set(absl::CancelledError("await canceled")); });
  Future<Grant> f = p.future();
  bool ready = f.WaitUntil(internal::DeadlineOf(call));
  call.cancel.Unregister(id);
  if (!ready) p.Set(absl::DeadlineExceededError("leader latch: await deadline exceeded"));
  return f.Get();
}

Future<Grant> LeaderLatch::AwaitAsync(const CallOptions& call) const {
  return RunAsync<Grant>(call, [this](const CallOptions& c) { return Await(c); });
}

}  // namespace cairn::recipes
