#include "cairn/recipes/barrier.h"

#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes {

absl::Status Barrier::Hold(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "barrier"); !st.ok()) return st;
  PutOptions po;
  if (session_) {
    if (absl::Status st = internal::CheckSession(*session_); !st.ok()) return st;
    po.lease = session_->lease();
  }
  Txn t;
  t.If({Cmp::CreateRevision(name_) == 0}).Then({Op::Put(name_, "", po)});
  auto r = kv_.Commit(t, call);
  if (!r.ok()) return r.status();
  if (!r->succeeded) return absl::AlreadyExistsError("barrier: already held: " + name_);
  return absl::OkStatus();
}

absl::Status Barrier::Release(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "barrier"); !st.ok()) return st;
  return kv_.Delete(name_, {}, call).status();
}

absl::Status Barrier::Wait(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "barrier"); !st.ok()) return st;
  Clock::time_point deadline = internal::DeadlineOf(call);
  CallOptions rpc = internal::RpcCall(call, deadline);
  while (true) {
    auto r = kv_.Get(name_, {}, rpc);
    if (!r.ok()) return r.status();
    if (r->kvs.empty()) return absl::OkStatus();
    WatchOptions wo;
    wo.start_revision = r->header.revision + 1;
    wo.filter_put = true;
    absl::Status st = internal::WaitForChange(watch_, name_, wo, call, deadline, nullptr);
    if (!st.ok()) return st;
  }
}

DoubleBarrier::DoubleBarrier(std::shared_ptr<Session> session, std::string name, int64_t count)
    : session_(std::move(session)), name_(std::move(name)), count_(count) {
  key_ = name_ + "/waiters/" + internal::LeaseHex(session_->lease());
}

absl::Status DoubleBarrier::Enter(const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name_, "double barrier"); !st.ok()) return st;
  if (count_ <= 0) return absl::InvalidArgumentError("double barrier: count must be > 0");
  if (my_rev_ != 0) return absl::FailedPreconditionError("double barrier: already entered");
  if (absl::Status st = internal::CheckSession(*session_); !st.ok()) return st;
  const Kv& kv = session_->kv();
  Clock::time_point deadline = internal::DeadlineOf(call);
  CallOptions rpc = internal::RpcCall(call, deadline);
  const std::string waiters = name_ + "/waiters/";
  const std::string ready = name_ + "/ready";
  PutOptions po;
  po.lease = session_->lease();
  GetOptions count_opts;
  count_opts.prefix = true;
  count_opts.count_only = true;
  Txn t;
  t.If({Cmp::CreateRevision(key_) == 0})
      .Then({Op::Put(key_, "", po), Op::Get(waiters, count_opts)})
      .Else({Op::Get(key_)});
  auto r = kv.Commit(t, internal::CreateCall(call, deadline));
  if (!r.ok()) return r.status();
  if (!r->succeeded) {
    return absl::FailedPreconditionError("double barrier: this session already entered");
  }
  Revision rev = r->header.revision;
  int64_t n = r->responses[1].get.count;
  if (n > count_) {
    internal::DeleteIfCreated(kv, key_, rev);
    return absl::ResourceExhaustedError("double barrier: more than count participants");
  }
  if (n == count_) {
    auto p = kv.Put(ready, "", {}, rpc);
    if (!p.ok()) {
      internal::DeleteIfCreated(kv, key_, rev);
      return p.status();
    }
    my_rev_ = rev;
    return absl::OkStatus();
  }
  // Wait for the ready key to be put (at or after our own put).
  while (true) {
    auto g = kv.Get(ready, {}, rpc);
    if (!g.ok()) {
      internal::DeleteIfCreated(kv, key_, rev);
      return g.status();
    }
    if (!g->kvs.empty() && g->kvs[0].mod_revision > rev) break;
    WatchOptions wo;
    wo.start_revision = g->header.revision + 1;
    wo.filter_delete = true;
    absl::Status st =
        internal::WaitForChange(session_->watch(), ready, wo, call, deadline, session_.get());
    if (!st.ok()) {
      internal::DeleteIfCreated(kv, key_, rev);
      return st;
    }
  }
  my_rev_ = rev;
  return absl::OkStatus();
}

absl::Status DoubleBarrier::Leave(const CallOptions& call) {
  if (my_rev_ == 0) return absl::FailedPreconditionError("double barrier: not entered");
  const Kv& kv = session_->kv();
  Clock::time_point deadline = internal::DeadlineOf(call);
  CallOptions rpc = internal::RpcCall(call, deadline);
  const std::string waiters = name_ + "/waiters/";
  const std::string ready = name_ + "/ready";
  GetOptions all;
  all.prefix = true;
  all.sort_target = SortTarget::kKey;
  all.sort_order = SortOrder::kAscend;
  all.keys_only = true;
  // etcd's algorithm: the lowest key leaves last; everyone else deletes its key and waits for
  // the lowest to go; the lowest waits for the highest remaining key to go.
  while (true) {
    auto r = kv.Get(waiters, all, rpc);
    if (!r.ok()) return r.status();
    bool present = false;
    for (const auto& k : r->kvs) present = present || k.key == key_;
    if (r->kvs.empty()) break;
    if (!present) {
      // We already left; wait for the lowest to go.
      WatchOptions wo;
      wo.start_revision = r->header.revision + 1;
      wo.filter_put = true;
      absl::Status st = internal::WaitForChange(session_->watch(), r->kvs.front().key, wo, call,
                                                deadline, nullptr);
      if (!st.ok()) return st;
      continue;
    }
    const std::string& lowest = r->kvs.front().key;
    const std::string& highest = r->kvs.back().key;
    if (r->kvs.size() == 1) {
      Txn t;
      t.Then({Op::Delete(ready), Op::Delete(key_)});
      auto d = kv.Commit(t, rpc);
      if (!d.ok()) return d.status();
      break;
    }
    std::string to_watch;
    if (lowest == key_) {
      to_watch = highest;
    } else {
      auto d = kv.Delete(key_, {}, rpc);
      if (!d.ok()) return d.status();
      to_watch = lowest;
    }
    WatchOptions wo;
    wo.start_revision = r->header.revision + 1;
    wo.filter_put = true;
    absl::Status st =
        internal::WaitForChange(session_->watch(), to_watch, wo, call, deadline, nullptr);
    if (!st.ok()) return st;
  }
  my_rev_ = 0;
  return absl::OkStatus();
}

Future<Completed> Barrier::WaitAsync(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "barrier"); !st.ok()) {
    return MakeReadyFuture<Completed>(st);
  }
  // Thread-free: a read, then a watch for the key's deletion (async_acquire.h).
  return internal::Map<bool, Completed>(internal::WaitKeyGoneAsync(kv_, watch_, name_, call),
                                        [](absl::StatusOr<bool> r) -> absl::StatusOr<Completed> {
                                          if (!r.ok()) return r.status();
                                          return Completed{};
                                        });
}

Future<Completed> DoubleBarrier::EnterAsync(const CallOptions& call) {
  return RunAsync(call, [this](const CallOptions& c) { return Enter(c); });
}

Future<Completed> DoubleBarrier::LeaveAsync(const CallOptions& call) {
  return RunAsync(call, [this](const CallOptions& c) { return Leave(c); });
}

}  // namespace cairn::recipes
