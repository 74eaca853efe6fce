#include "cairn/recipes/semaphore.h"

#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes {

Semaphore::Semaphore(std::shared_ptr<Session> session, std::string name, int64_t permits)
    : session_(std::move(session)), name_(std::move(name)), permits_(permits) {
  prefix_ = name_ + "/";
  key_ = prefix_ + internal::LeaseHex(session_->lease());
}

absl::StatusOr<Grant> Semaphore::Acquire(const CallOptions& call) {
  auto r = AcquireImpl(true, call);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return absl::InternalError("semaphore: wait ended without a permit");
  return std::move(**r);
}

Future<Grant> Semaphore::AcquireAsync(const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name_, "semaphore"); !st.ok()) {
    return MakeReadyFuture<Grant>(st);
  }
  if (permits_ <= 0) {
    return MakeReadyFuture<Grant>(absl::InvalidArgumentError("semaphore: permits must be > 0"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value()) {
      return MakeReadyFuture<Grant>(
          absl::FailedPreconditionError("semaphore: this object already holds a permit"));
    }
  }
  // Thread-free: each step starts from the completion of the one before (async_acquire.h).
  return internal::Map<Grant, Grant>(
      internal::AcquireAsync(session_, key_, prefix_, "", /*update_value=*/false, call, permits_),
      [this](absl::StatusOr<Grant> g) -> absl::StatusOr<Grant> {
        if (g.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          grant_ = *g;
        }
        return g;
      });
}

absl::StatusOr<std::optional<Grant>> Semaphore::TryAcquire(const CallOptions& call) {
  return AcquireImpl(false, call);
}

absl::StatusOr<std::optional<Grant>> Semaphore::AcquireImpl(bool wait, const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name_, "semaphore"); !st.ok()) return st;
  if (permits_ <= 0) return absl::InvalidArgumentError("semaphore: permits must be > 0");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value()) {
      return absl::FailedPreconditionError("semaphore: this object already holds a permit");
    }
  }
  internal::QueuedKey q;
  q.key = key_;
  q.wait_prefix = prefix_;
  q.slots = permits_;
  auto r = internal::AcquireQueued(*session_, q, wait, call, "semaphore");
  if (!r.ok() || !r->has_value()) return r;
  std::lock_guard<std::mutex> lock(mu_);
  grant_ = **r;
  return r;
}

absl::Status Semaphore::Release(const CallOptions& call) {
  std::optional<Grant> g = grant();
  if (!g.has_value()) return absl::FailedPreconditionError("semaphore: no permit held");
  if (absl::Status st = internal::DeleteGranted(session_->kv(), *g, call); !st.ok()) return st;
  std::lock_guard<std::mutex> lock(mu_);
  grant_.reset();
  return absl::OkStatus();
}

std::optional<Grant> Semaphore::grant() const {
  std::lock_guard<std::mutex> lock(mu_);
  return grant_;
}

Future<Completed> Semaphore::ReleaseAsync(const CallOptions& call) {
  std::optional<Grant> g = grant();
  if (!g.has_value()) {
    return MakeReadyFuture<Completed>(absl::FailedPreconditionError("semaphore: no permit held"));
  }
  Revision token = g->fencing_token;
  return internal::DeleteGrantedAsync(session_->kv(), *g, call, [this, token] {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value() && grant_->fencing_token == token) grant_.reset();
  });
}

}  // namespace cairn::recipes
