#include "cairn/recipes/semaphore.h"

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
  if (absl::Status st = internal::CheckSession(*session_); !st.ok()) return st;
  const Kv& kv = session_->kv();
  Clock::time_point deadline = internal::DeadlineOf(call);
  CallOptions rpc = internal::RpcCall(call, deadline);
  PutOptions po;
  po.lease = session_->lease();
  Txn t;
  t.If({Cmp::CreateRevision(key_) == 0}).Then({Op::Put(key_, "", po)}).Else({Op::Get(key_)});
  auto r = kv.Commit(t, internal::CreateCall(call, deadline));
  if (!r.ok()) return r.status();
  const bool created = r->succeeded;
  Revision my_rev = r->header.revision;
  if (!created) {
    if (r->responses.empty() || r->responses[0].get.kvs.empty()) {
      return absl::InternalError("semaphore: own key missing from txn response");
    }
    my_rev = r->responses[0].get.kvs[0].create_revision;
  }
  auto fail = [&](absl::Status st) {
    if (created) internal::DeleteIfCreated(kv, key_, my_rev);
    return st;
  };
  // Keys older than ours (count_only would ignore the create-revision filter, as in etcd); at
  // most `permits` of them are needed to decide.
  GetOptions older;
  older.prefix = true;
  older.keys_only = true;
  older.limit = permits_;
  older.max_create_revision = my_rev - 1;
  ResponseHeader header;
  while (true) {
    auto c = kv.Get(prefix_, older, rpc);
    if (!c.ok()) return fail(c.status());
    header = c->header;
    if (static_cast<int64_t>(c->kvs.size()) < permits_) break;
    if (!wait) {
      if (created) internal::DeleteIfCreated(kv, key_, my_rev);
      return std::optional<Grant>();
    }
    WatchOptions wo;
    wo.prefix = true;
    wo.filter_put = true;
    wo.start_revision = c->header.revision + 1;
    absl::Status st =
        internal::WaitForChange(session_->watch(), prefix_, wo, call, deadline, session_.get());
    if (!st.ok()) return fail(st);
  }
  auto check = kv.Get(key_, {}, rpc);
  if (!check.ok()) return fail(check.status());
  if (check->kvs.empty() || check->kvs[0].create_revision != my_rev ||
      check->kvs[0].lease != session_->lease()) {
    absl::Status s = session_->status();
    if (!s.ok()) return s;
    return MakeError(ErrorKind::kLeaseLost, "semaphore: own key vanished while waiting");
  }
  Grant g;
  g.key = key_;
  g.fencing_token = my_rev;
  g.lease = session_->lease();
  g.header = check->header;
  std::lock_guard<std::mutex> lock(mu_);
  grant_ = g;
  return std::optional<Grant>(std::move(g));
}

absl::Status Semaphore::Release(const CallOptions& call) {
  std::optional<Grant> g = grant();
  if (!g.has_value()) return absl::FailedPreconditionError("semaphore: no permit held");
  Txn t;
  t.If({g->Guard()}).Then({Op::Delete(g->key)});
  auto r = session_->kv().Commit(t, call);
  if (!r.ok()) return r.status();
  std::lock_guard<std::mutex> lock(mu_);
  grant_.reset();
  return absl::OkStatus();
}

std::optional<Grant> Semaphore::grant() const {
  std::lock_guard<std::mutex> lock(mu_);
  return grant_;
}

}  // namespace cairn::recipes
