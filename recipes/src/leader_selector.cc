#include "cairn/recipes/leader_selector.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "src/internal.h"

namespace cairn::recipes {

struct LeaderSelector::State {
  std::shared_ptr<Session> session;
  std::string name;
  LeaderSelectorOptions options;
  CancelToken stop = CancelToken::Make();
  std::thread thread;
  std::atomic<int64_t> leaderships{0};
  mutable std::mutex mu;
  absl::Status status;

  void SetStatus(const absl::Status& st) {
    std::lock_guard<std::mutex> lock(mu);
    if (status.ok()) status = st;
  }

  void Run() {
    while (true) {
      Election election(session, name);
      CallOptions call;
      call.cancel = stop;
      auto g = election.Campaign(options.value, call);
      if (!g.ok()) {
        SetStatus(stop.canceled() ? absl::CancelledError("leader selector closed") : g.status());
        return;
      }
      ++leaderships;
      // `lost` follows the session's end and Close().
      CancelToken lost = CancelToken::Make();
      uint64_t end_id = session->AddEndListener([lost](const absl::Status&) { lost.Cancel(); });
      uint64_t stop_id = stop.Register([lost] { lost.Cancel(); });
      options.take_leadership(*g, lost);
      stop.Unregister(stop_id);
      session->RemoveEndListener(end_id);
      (void)election.Resign();
      if (stop.canceled()) {
        SetStatus(absl::CancelledError("leader selector closed"));
        return;
      }
      if (absl::Status st = session->status(); !st.ok()) {
        SetStatus(st);
        return;
      }
      if (!options.requeue) {
        SetStatus(absl::FailedPreconditionError("leader selector: done (no requeue)"));
        return;
      }
    }
  }
};

absl::StatusOr<std::unique_ptr<LeaderSelector>> LeaderSelector::Start(
    std::shared_ptr<Session> session, std::string name, LeaderSelectorOptions options) {
  if (absl::Status st = internal::CheckName(name, "leader selector"); !st.ok()) return st;
  if (!options.take_leadership) {
    return absl::InvalidArgumentError("leader selector: take_leadership is empty");
  }
  if (absl::Status st = internal::CheckSession(*session); !st.ok()) return st;
  std::unique_ptr<LeaderSelector> sel(new LeaderSelector());
  sel->state_ = std::make_shared<State>();
  State* s = sel->state_.get();
  s->session = std::move(session);
  s->name = std::move(name);
  s->options = std::move(options);
  s->thread = std::thread([s] { s->Run(); });
  return sel;
}

LeaderSelector::~LeaderSelector() { Close(); }

void LeaderSelector::Close() {
  if (!state_) return;
  state_->stop.Cancel();
  if (state_->thread.joinable()) state_->thread.join();
}

int64_t LeaderSelector::leaderships() const { return state_->leaderships.load(); }

absl::Status LeaderSelector::status() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->status;
}

}  // namespace cairn::recipes
