#include "cairn/recipes/leader_latch.h"

#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "src/async_acquire.h"
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
  std::map<uint64_t, Promise<Grant>> waiters;  // AwaitAsync's, by id
  uint64_t next_waiter = 0;

  void Finish(const absl::Status& why) {
    std::map<uint64_t, Promise<Grant>> w;
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
      if (status.ok()) status = why;
      w.swap(waiters);
    }
    for (auto& entry : w) entry.second.Set(why);
  }

  void Run() {
    CallOptions call;
    call.cancel = stop;
    auto g = election->Campaign(options.value, call);
    if (!g.ok()) {
      Finish(stop.canceled() ? absl::CancelledError("leader latch closed") : g.status());
      return;
    }
    std::map<uint64_t, Promise<Grant>> w;
    {
      std::lock_guard<std::mutex> lock(mu);
      grant = *g;
      w.swap(waiters);
    }
    for (auto& entry : w) entry.second.Set(*g);
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
  return AwaitAsync(call).Get();
}

Future<Grant> LeaderLatch::AwaitAsync(const CallOptions& call) const {
  // Thread-free: a promise the latch's thread completes, ended early by the cancel token or the
  // recipes' timer at the deadline (either takes it out of the waiters).
  std::shared_ptr<State> st = state_;
  Promise<Grant> p;
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    if (st->grant.has_value()) return MakeReadyFuture<Grant>(*st->grant);
    if (st->done) return MakeReadyFuture<Grant>(st->status);
    id = ++st->next_waiter;
    st->waiters.emplace(id, p);
  }
  auto end = [st, id](absl::Status why) {
    std::optional<Promise<Grant>> mine;
    {
      std::lock_guard<std::mutex> lock(st->mu);
      auto it = st->waiters.find(id);
      if (it == st->waiters.end()) return;  // completed meanwhile
      mine = it->second;
      st->waiters.erase(it);
    }
    mine->Set(std::move(why));
  };
  CancelToken cancel = call.cancel;
  uint64_t cancel_id = cancel.Register([end] { end(absl::CancelledError("await canceled")); });
  Clock::time_point deadline = internal::DeadlineOf(call);
  uint64_t timer_id = 0;
  if (deadline != Clock::time_point::max()) {
    timer_id = internal::RunAt(deadline, [end] {
      end(absl::DeadlineExceededError("leader latch: await deadline exceeded"));
    });
  }
  p.SetCancel([end] { end(absl::CancelledError("await canceled")); });
  return internal::Map<Grant, Grant>(
      p.future(), [cancel, cancel_id, timer_id](absl::StatusOr<Grant> g) -> absl::StatusOr<Grant> {
        cancel.Unregister(cancel_id);
        internal::CancelTimer(timer_id);
        return g;
      });
}

}  // namespace cairn::recipes
