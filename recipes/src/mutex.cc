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
  if (absl::Status st = internal::CheckSession(*session_); !st.ok()) return st;
  const Kv& kv = session_->kv();
  Clock::time_point deadline = internal::DeadlineOf(call);
  CallOptions rpc = internal::RpcCall(call, deadline);

  PutOptions po;
  po.lease = session_->lease();
  Txn txn;
  txn.If({Cmp::CreateRevision(key_) == 0})
      .Then({Op::Put(key_, "", po), Op::Get(prefix_, internal::ByCreate(true))})
      .Else({Op::Get(key_), Op::Get(prefix_, internal::ByCreate(true))});
  auto resp = kv.Commit(txn, internal::CreateCall(call, deadline));
  if (!resp.ok()) return resp.status();
  if (resp->responses.size() != 2) return absl::InternalError("mutex: unexpected txn response");
  const bool created = resp->succeeded;
  Revision my_rev = 0;
  if (created) {
    my_rev = resp->header.revision;
  } else {
    const auto& mine = resp->responses[0].get.kvs;
    if (mine.empty()) return absl::InternalError("mutex: own key missing from txn response");
    my_rev = mine[0].create_revision;
  }
  const auto& first = resp->responses[1].get.kvs;
  bool owner = !first.empty() && first[0].create_revision == my_rev;
  ResponseHeader header = resp->header;
  if (!owner) {
    if (!wait) {
      if (created) internal::DeleteIfCreated(kv, key_, my_rev);
      return std::optional<Grant>();
    }
    absl::Status st = internal::WaitPredecessorsGone(*session_, prefix_, my_rev, call, deadline);
    if (!st.ok()) {
      if (created) internal::DeleteIfCreated(kv, key_, my_rev);
      return st;
    }
    // Re-check that the lock is really ours: our key must still be the one we created, on our
    // lease (it is gone if the session was lost while we waited).
    auto check = kv.Get(key_, {}, rpc);
    if (!check.ok()) {
      if (created) internal::DeleteIfCreated(kv, key_, my_rev);
      return check.status();
    }
    if (check->kvs.empty() || check->kvs[0].create_revision != my_rev ||
        check->kvs[0].lease != session_->lease()) {
      absl::Status s = session_->status();
      if (!s.ok()) return s;
      return MakeError(ErrorKind::kLeaseLost, "mutex: own key vanished while waiting");
    }
    header = check->header;
  }
  Grant g;
  g.key = key_;
  g.fencing_token = my_rev;
  g.lease = session_->lease();
  g.header = header;
  std::lock_guard<std::mutex> lock(mu_);
  grant_ = g;
  return std::optional<Grant>(std::move(g));
}

absl::Status Mutex::Unlock(const CallOptions& call) {
  std::optional<Grant> g;
  {
    std::lock_guard<std::mutex> lock(mu_);
    g = grant_;
  }
  if (!g.has_value()) return absl::FailedPreconditionError("mutex: not held by this Mutex object");
  Txn txn;
  txn.If({g->Guard()}).Then({Op::Delete(g->key)});
  auto resp = session_->kv().Commit(txn, call);
  if (!resp.ok()) return resp.status();
  std::lock_guard<std::mutex> lock(mu_);
  grant_.reset();
  return absl::OkStatus();
}

std::optional<Grant> Mutex::grant() const {
  std::lock_guard<std::mutex> lock(mu_);
  return grant_;
}

}  // namespace cairn::recipes
