#include "cairn/recipes/mutex.h"

#include <utility>

#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes {

Mutex::Mutex(std::shared_ptr<Session> session, std::string name)
    : session_(std::move(session)), name_(std::move(name)) {
  prefix_ = name_ + "/";
  key_ = prefix_ + internal::LeaseHex(session_->lease());
}

absl::StatusOr<Grant> Mutex::Lock(const CallOptions& call) {
  auto r = Acquire(/*wait=*/true, call);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return absl::InternalError("mutex: lock wait ended without a grant");
  return std::move(**r);
}

Future<Grant> Mutex::LockAsync(const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name_, "mutex"); !st.ok()) {
    return MakeReadyFuture<Grant>(st);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value()) {
      return MakeReadyFuture<Grant>(
          absl::FailedPreconditionError("mutex: already held by this Mutex object"));
    }
  }
  return internal::Map<Grant, Grant>(
      internal::AcquireAsync(session_, key_, prefix_, "", /*update_value=*/false, call),
      [this](absl::StatusOr<Grant> g) -> absl::StatusOr<Grant> {
        if (g.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          grant_ = *g;
        }
        return g;
      });
}

absl::StatusOr<std::optional<Grant>> Mutex::TryLock(const CallOptions& call) {
  return Acquire(/*wait=*/false, call);
}

absl::StatusOr<std::optional<Grant>> Mutex::Acquire(bool wait, const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name_, "mutex"); !st.ok()) return st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value()) {
      return absl::FailedPreconditionError("mutex: already held by this Mutex object");
    }
  }
  internal::QueuedKey q;
  q.key = key_;
  q.wait_prefix = prefix_;
  auto r = internal::AcquireQueued(*session_, q, wait, call, "mutex");
  if (!r.ok() || !r->has_value()) return r;
  std::lock_guard<std::mutex> lock(mu_);
  grant_ = **r;
  return r;
}

absl::Status Mutex::Unlock(const CallOptions& call) {
  std::optional<Grant> g = grant();
  if (!g.has_value()) return absl::FailedPreconditionError("mutex: not held by this Mutex object");
  if (absl::Status st = internal::DeleteGranted(session_->kv(), *g, call); !st.ok()) return st;
  std::lock_guard<std::mutex> lock(mu_);
  grant_.reset();
  return absl::OkStatus();
}

Future<Completed> Mutex::UnlockAsync(const CallOptions& call) {
  std::optional<Grant> g = grant();
  if (!g.has_value()) {
    return MakeReadyFuture<Completed>(
        absl::FailedPreconditionError("mutex: not held by this Mutex object"));
  }
  Txn t;
  t.If({g->Guard()}).Then({Op::Delete(g->key)});
  Revision token = g->fencing_token;
  return internal::Map<TxnResponse, Completed>(
      session_->kv().CommitAsync(t, call),
      [this, token](absl::StatusOr<TxnResponse> r) -> absl::StatusOr<Completed> {
        if (!r.ok()) return r.status();
        std::lock_guard<std::mutex> lock(mu_);
        if (grant_.has_value() && grant_->fencing_token == token) grant_.reset();
        return Completed{};
      });
}

std::optional<Grant> Mutex::grant() const {
  std::lock_guard<std::mutex> lock(mu_);
  return grant_;
}

Future<std::optional<Grant>> Mutex::TryLockAsync(const CallOptions& call) {
  using Result = std::optional<Grant>;
  if (absl::Status st = internal::CheckName(name_, "mutex"); !st.ok()) {
    return MakeReadyFuture<Result>(st);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value()) {
      return MakeReadyFuture<Result>(
          absl::FailedPreconditionError("mutex: already held by this Mutex object"));
    }
  }
  return internal::Map<Result, Result>(
      internal::TryAcquireAsync(session_, key_, prefix_, call, "mutex"),
      [this](absl::StatusOr<Result> g) -> absl::StatusOr<Result> {
        if (g.ok() && g->has_value()) {
          std::lock_guard<std::mutex> lock(mu_);
          grant_ = **g;
        }
        return g;
      });
}

}  // namespace cairn::recipes
