#include "cairn/recipes/multi_lock.h"

#include <algorithm>
#include <functional>
#include <memory>

#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes {

MultiLock::MultiLock(std::shared_ptr<Session> session, std::vector<std::string> names)
    : names_(std::move(names)) {
  std::sort(names_.begin(), names_.end());
  names_.erase(std::unique(names_.begin(), names_.end()), names_.end());
  for (const auto& n : names_) mutexes_.push_back(std::make_unique<Mutex>(session, n));
}

namespace {

// One LockAsync: the mutexes one after another, each from the completion of the one before;
// on an error the ones taken are unlocked (newest first) before the error is reported.
class MultiAcquire : public std::enable_shared_from_this<MultiAcquire> {
 public:
  MultiAcquire(std::vector<Mutex*> mutexes, std::function<void()> on_held)
      : mutexes_(std::move(mutexes)), on_held_(std::move(on_held)) {}

  Future<std::vector<Grant>> Start(const CallOptions& call) {
    Future<std::vector<Grant>> f = promise_.future();
    call_ = internal::OwnCall(call, promise_, &unlink_);
    Next();
    return f;
  }

 private:
  void Next() {
    if (grants_.size() == mutexes_.size()) {
      on_held_();
      return Done(std::move(grants_));
    }
    auto self = shared_from_this();
    mutexes_[grants_.size()]->LockAsync(call_).Then([self](absl::StatusOr<Grant> g) {
      if (!g.ok()) return self->Undo(g.status());
      self->grants_.push_back(std::move(*g));
      self->Next();
    });
  }

  // Releases the taken locks, newest first (best effort, the client's default deadline).
  void Undo(absl::Status why) {
    if (grants_.empty()) return Done(why);
    grants_.pop_back();
    auto self = shared_from_this();
    mutexes_[grants_.size()]->UnlockAsync().Then(
        [self, why](const absl::StatusOr<recipes::Completed>&) { self->Undo(why); });
  }

  void Done(absl::StatusOr<std::vector<Grant>> r) {
    unlink_();
    promise_.Set(std::move(r));
  }

  const std::vector<Mutex*> mutexes_;
  const std::function<void()> on_held_;
  Promise<std::vector<Grant>> promise_;
  std::function<void()> unlink_;
  CallOptions call_;
  // Written by one step, read by the next (each started from the one before).
  std::vector<Grant> grants_;
};

}  // namespace

absl::StatusOr<std::vector<Grant>> MultiLock::Lock(const CallOptions& call) {
  return LockAsync(call).Get();
}

Future<std::vector<Grant>> MultiLock::LockAsync(const CallOptions& call) {
  using Result = std::vector<Grant>;
  if (names_.empty()) {
    return MakeReadyFuture<Result>(absl::InvalidArgumentError("multilock: no lock names"));
  }
  for (const auto& n : names_) {
    if (absl::Status st = internal::CheckName(n, "multilock"); !st.ok()) {
      return MakeReadyFuture<Result>(st);
    }
  }
  if (held_)
    return MakeReadyFuture<Result>(absl::FailedPreconditionError("multilock: already held"));
  std::vector<Mutex*> mutexes;
  for (const auto& m : mutexes_) mutexes.push_back(m.get());
  auto a = std::make_shared<MultiAcquire>(std::move(mutexes), [this] { held_ = true; });
  return a->Start(call);
}

absl::Status MultiLock::Unlock(const CallOptions& call) {
  if (!held_) return absl::FailedPreconditionError("multilock: not held");
  absl::Status first;
  for (auto it = mutexes_.rbegin(); it != mutexes_.rend(); ++it) {
    if ((*it)->grant().has_value()) {
      absl::Status st = (*it)->Unlock(call);
      if (!st.ok() && first.ok()) first = st;
    }
  }
  held_ = false;
  return first;
}

namespace {

// Unlocks mutexes[i], then mutexes[i-1], ... (the held ones); completes with the first error.
void UnlockFrom(std::shared_ptr<std::vector<Mutex*>> mutexes, size_t i, CallOptions call,
                absl::Status first, Promise<Completed> done) {
  while (i > 0 && !(*mutexes)[i - 1]->grant().has_value()) --i;
  if (i == 0) {
    if (!first.ok()) return done.Set(first);
    return done.Set(Completed{});
  }
  (*mutexes)[i - 1]->UnlockAsync(call).Then(
      [mutexes, i, call, first, done](const absl::StatusOr<Completed>& r) {
        absl::Status next = first;
        if (!r.ok() && next.ok()) next = r.status();
        UnlockFrom(mutexes, i - 1, call, next, done);
      });
}

}  // namespace

Future<Completed> MultiLock::UnlockAsync(const CallOptions& call) {
  if (!held_)
    return MakeReadyFuture<Completed>(absl::FailedPreconditionError("multilock: not held"));
  held_ = false;
  auto mutexes = std::make_shared<std::vector<Mutex*>>();
  for (const auto& m : mutexes_) mutexes->push_back(m.get());
  Promise<Completed> done;
  Future<Completed> f = done.future();
  size_t n = mutexes->size();
  UnlockFrom(std::move(mutexes), n, call, absl::OkStatus(), std::move(done));
  return f;
}

std::vector<Compare> MultiLock::Guards() const {
  std::vector<Compare> out;
  for (const auto& m : mutexes_) {
    if (auto g = m->grant(); g.has_value()) out.push_back(g->Guard());
  }
  return out;
}

}  // namespace cairn::recipes
