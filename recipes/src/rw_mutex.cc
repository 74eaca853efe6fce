#include "cairn/recipes/rw_mutex.h"

#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes {

RWMutex::RWMutex(std::shared_ptr<Session> session, std::string name)
    : session_(std::move(session)), name_(std::move(name)) {}

absl::StatusOr<std::optional<Grant>> RWMutex::Acquire(bool write, bool wait,
                                                      const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name_, "rwmutex"); !st.ok()) return st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value()) {
      return absl::FailedPreconditionError("rwmutex: already held by this object");
    }
  }
  internal::QueuedKey q;
  q.key = name_ + (write ? "/write/" : "/read/") + internal::LeaseHex(session_->lease());
  q.wait_prefix = write ? name_ + "/" : name_ + "/write/";
  auto r = internal::AcquireQueued(*session_, q, wait, call, "rwmutex");
  if (!r.ok() || !r->has_value()) return r;
  std::lock_guard<std::mutex> lock(mu_);
  grant_ = **r;
  return r;
}

absl::StatusOr<Grant> RWMutex::RLock(const CallOptions& call) {
  auto r = Acquire(false, true, call);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return absl::InternalError("rwmutex: wait ended without a grant");
  return std::move(**r);
}

absl::StatusOr<Grant> RWMutex::Lock(const CallOptions& call) {
  auto r = Acquire(true, true, call);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return absl::InternalError("rwmutex: wait ended without a grant");
  return std::move(**r);
}

Future<Grant> RWMutex::RLockAsync(const CallOptions& call) { return AcquireAsync(false, call); }

Future<Grant> RWMutex::LockAsync(const CallOptions& call) { return AcquireAsync(true, call); }

Future<Grant> RWMutex::AcquireAsync(bool write, const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name_, "rwmutex"); !st.ok()) {
    return MakeReadyFuture<Grant>(st);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value()) {
      return MakeReadyFuture<Grant>(
          absl::FailedPreconditionError("rwmutex: already held by this object"));
    }
  }
  // Thread-free, with the key layout and wait prefixes of Acquire.
  std::string key = name_ + (write ? "/write/" : "/read/") + internal::LeaseHex(session_->lease());
  std::string wait_prefix = write ? name_ + "/" : name_ + "/write/";
  return internal::Map<Grant, Grant>(
      internal::AcquireAsync(session_, std::move(key), std::move(wait_prefix), "",
                             /*update_value=*/false, call),
      [this](absl::StatusOr<Grant> g) -> absl::StatusOr<Grant> {
        if (g.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          grant_ = *g;
        }
        return g;
      });
}

absl::StatusOr<std::optional<Grant>> RWMutex::TryRLock(const CallOptions& call) {
  return Acquire(false, false, call);
}

absl::StatusOr<std::optional<Grant>> RWMutex::TryLock(const CallOptions& call) {
  return Acquire(true, false, call);
}

absl::Status RWMutex::Unlock(const CallOptions& call) {
  std::optional<Grant> g = grant();
  if (!g.has_value()) return absl::FailedPreconditionError("rwmutex: not held by this object");
  if (absl::Status st = internal::DeleteGranted(session_->kv(), *g, call); !st.ok()) return st;
  std::lock_guard<std::mutex> lock(mu_);
  grant_.reset();
  return absl::OkStatus();
}

std::optional<Grant> RWMutex::grant() const {
  std::lock_guard<std::mutex> lock(mu_);
  return grant_;
}

Future<Completed> RWMutex::UnlockAsync(const CallOptions& call) {
  std::optional<Grant> g = grant();
  if (!g.has_value()) {
    return MakeReadyFuture<Completed>(
        absl::FailedPreconditionError("rwmutex: not held by this object"));
  }
  Revision token = g->fencing_token;
  return internal::DeleteGrantedAsync(session_->kv(), *g, call, [this, token] {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value() && grant_->fencing_token == token) grant_.reset();
  });
}

}  // namespace cairn::recipes
