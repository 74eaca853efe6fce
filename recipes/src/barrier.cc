#include "cairn/recipes/barrier.h"

#include <functional>
#include <memory>
#include <utility>

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

Future<Completed> Barrier::HoldAsync(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "barrier"); !st.ok()) {
    return MakeReadyFuture<Completed>(st);
  }
  PutOptions po;
  if (session_) {
    if (absl::Status st = internal::CheckSession(*session_); !st.ok()) {
      return MakeReadyFuture<Completed>(st);
    }
    po.lease = session_->lease();
  }
  Txn t;
  t.If({Cmp::CreateRevision(name_) == 0}).Then({Op::Put(name_, "", po)});
  return internal::Map<TxnResponse, Completed>(
      kv_.CommitAsync(t, call),
      [name = name_](absl::StatusOr<TxnResponse> r) -> absl::StatusOr<Completed> {
        if (!r.ok()) return r.status();
        if (!r->succeeded) return absl::AlreadyExistsError("barrier: already held: " + name);
        return Completed{};
      });
}

Future<Completed> Barrier::ReleaseAsync(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "barrier"); !st.ok()) {
    return MakeReadyFuture<Completed>(st);
  }
  return internal::Map<DeleteResponse, Completed>(
      kv_.DeleteAsync(name_, {}, call),
      [](absl::StatusOr<DeleteResponse> r) -> absl::StatusOr<Completed> {
        if (!r.ok()) return r.status();
        return Completed{};
      });
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

namespace {

// One DoubleBarrier::EnterAsync: put our waiter key (counting the others in the same txn); the
// one completing the group puts "<name>/ready"; the others read the ready key and wait for its
// put (a watch), looking again after each change. A failure after our key was put deletes it
// before the failure is reported.
class Entering : public std::enable_shared_from_this<Entering> {
 public:
  Entering(std::shared_ptr<Session> session, std::string name, int64_t count, std::string key)
      : session_(std::move(session)),
        kv_(session_->kv()),
        count_(count),
        key_(std::move(key)),
        waiters_(name + "/waiters/"),
        ready_(name + "/ready") {}

  Future<Revision> Start(const CallOptions& call) {
    Future<Revision> f = promise_.future();
    call_ = internal::OwnCall(call, promise_, &unlink_);
    rpc_ = internal::RpcCall(call_, call_.deadline);
    if (absl::Status st = internal::CheckSession(*session_); !st.ok()) {
      Done(st);
      return f;
    }
    PutOptions po;
    po.lease = session_->lease();
    GetOptions count_opts;
    count_opts.prefix = true;
    count_opts.count_only = true;
    Txn t;
    t.If({Cmp::CreateRevision(key_) == 0})
        .Then({Op::Put(key_, "", po), Op::Get(waiters_, count_opts)})
        .Else({Op::Get(key_)});
    auto self = shared_from_this();
    kv_.CommitAsync(t, internal::CreateCall(call_, call_.deadline))
        .Then([self](absl::StatusOr<TxnResponse> r) { self->OnCreated(std::move(r)); });
    return f;
  }

 private:
  void OnCreated(absl::StatusOr<TxnResponse> r) {
    if (!r.ok()) return Done(r.status());
    if (!r->succeeded) {
      return Done(absl::FailedPreconditionError("double barrier: this session already entered"));
    }
    rev_ = r->header.revision;
    int64_t n = r->responses[1].get.count;
    if (n > count_) {
      return Fail(absl::ResourceExhaustedError("double barrier: more than count participants"));
    }
    if (n < count_) return Look();
    auto self = shared_from_this();
    kv_.PutAsync(ready_, "", {}, rpc_).Then([self](absl::StatusOr<PutResponse> p) {
      if (!p.ok()) return self->Fail(p.status());
      self->Done(self->rev_);
    });
  }

  // Is the ready key put at or after our own put? If not, wait for a put of it.
  void Look() {
    auto self = shared_from_this();
    kv_.GetAsync(ready_, {}, rpc_).Then([self](absl::StatusOr<GetResponse> g) {
      if (!g.ok()) return self->Fail(g.status());
      if (!g->kvs.empty() && g->kvs[0].mod_revision > self->rev_) return self->Done(self->rev_);
      WatchOptions wo;
      wo.start_revision = g->header.revision + 1;
      wo.filter_delete = true;
      internal::WaitForChangeAsync(self->session_->watch(), self->ready_, wo, self->call_,
                                   self->call_.deadline, self->session_)
          .Then([self](absl::StatusOr<bool> w) {
            if (!w.ok()) return self->Fail(w.status());
            self->Look();
          });
    });
  }

  // Deletes our waiter key (guarded by its create revision; the client's default deadline),
  // then reports `why`.
  void Fail(absl::Status why) {
    Txn t;
    t.If({Cmp::CreateRevision(key_) == rev_}).Then({Op::Delete(key_)});
    auto self = shared_from_this();
    kv_.CommitAsync(t).Then([self, why](const absl::StatusOr<TxnResponse>&) { self->Done(why); });
  }

  void Done(absl::StatusOr<Revision> r) {
    unlink_();
    promise_.Set(std::move(r));
  }

  const std::shared_ptr<Session> session_;
  const Kv kv_;
  const int64_t count_;
  const std::string key_;
  const std::string waiters_;
  const std::string ready_;
  Promise<Revision> promise_;
  std::function<void()> unlink_ = [] {};
  CallOptions call_;
  CallOptions rpc_;
  Revision rev_ = 0;  // our key's create revision (written once, before the steps that read it)
};

// One DoubleBarrier::LeaveAsync, etcd's algorithm: the lowest key leaves last; everyone else
// deletes its key and waits for the lowest to go; the lowest waits for the highest remaining
// key to go; the last one deletes the ready key with its own.
class Leaving : public std::enable_shared_from_this<Leaving> {
 public:
  Leaving(std::shared_ptr<Session> session, std::string name, std::string key)
      : session_(std::move(session)),
        kv_(session_->kv()),
        key_(std::move(key)),
        waiters_(name + "/waiters/"),
        ready_(name + "/ready") {}

  Future<bool> Start(const CallOptions& call) {
    Future<bool> f = promise_.future();
    call_ = internal::OwnCall(call, promise_, &unlink_);
    rpc_ = internal::RpcCall(call_, call_.deadline);
    Look();
    return f;
  }

 private:
  void Look() {
    GetOptions all;
    all.prefix = true;
    all.sort_target = SortTarget::kKey;
    all.sort_order = SortOrder::kAscend;
    all.keys_only = true;
    auto self = shared_from_this();
    kv_.GetAsync(waiters_, all, rpc_).Then([self](absl::StatusOr<GetResponse> r) {
      self->OnWaiters(std::move(r));
    });
  }

  void OnWaiters(absl::StatusOr<GetResponse> r) {
    if (!r.ok()) return Done(r.status());
    if (r->kvs.empty()) return Done(true);
    bool present = false;
    for (const auto& k : r->kvs) present = present || k.key == key_;
    const Revision rev = r->header.revision;
    if (!present) return WaitGone(r->kvs.front().key, rev);  // we left: wait for the lowest
    const std::string lowest = r->kvs.front().key;
    const std::string highest = r->kvs.back().key;
    auto self = shared_from_this();
    if (r->kvs.size() == 1) {
      Txn t;
      t.Then({Op::Delete(ready_), Op::Delete(key_)});
      kv_.CommitAsync(t, rpc_).Then([self](absl::StatusOr<TxnResponse> d) {
        if (!d.ok()) return self->Done(d.status());
        self->Done(true);
      });
      return;
    }
    if (lowest == key_) return WaitGone(highest, rev);
    kv_.DeleteAsync(key_, {}, rpc_).Then([self, lowest, rev](absl::StatusOr<DeleteResponse> d) {
      if (!d.ok()) return self->Done(d.status());
      self->WaitGone(lowest, rev);
    });
  }

  void WaitGone(const std::string& key, Revision rev) {
    WatchOptions wo;
    wo.start_revision = rev + 1;
    wo.filter_put = true;
    auto self = shared_from_this();
    internal::WaitForChangeAsync(session_->watch(), key, wo, call_, call_.deadline, nullptr)
        .Then([self](absl::StatusOr<bool> w) {
          if (!w.ok()) return self->Done(w.status());
          self->Look();
        });
  }

  void Done(absl::StatusOr<bool> r) {
    unlink_();
    promise_.Set(std::move(r));
  }

  const std::shared_ptr<Session> session_;
  const Kv kv_;
  const std::string key_;
  const std::string waiters_;
  const std::string ready_;
  Promise<bool> promise_;
  std::function<void()> unlink_ = [] {};
  CallOptions call_;
  CallOptions rpc_;
};

}  // namespace

absl::Status DoubleBarrier::Enter(const CallOptions& call) {
  return EnterAsync(call).Get().status();
}

absl::Status DoubleBarrier::Leave(const CallOptions& call) {
  return LeaveAsync(call).Get().status();
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
  if (absl::Status st = internal::CheckName(name_, "double barrier"); !st.ok()) {
    return MakeReadyFuture<Completed>(st);
  }
  if (count_ <= 0) {
    return MakeReadyFuture<Completed>(
        absl::InvalidArgumentError("double barrier: count must be > 0"));
  }
  if (my_rev_ != 0) {
    return MakeReadyFuture<Completed>(
        absl::FailedPreconditionError("double barrier: already entered"));
  }
  auto e = std::make_shared<Entering>(session_, name_, count_, key_);
  return internal::Map<Revision, Completed>(
      e->Start(call), [this](absl::StatusOr<Revision> r) -> absl::StatusOr<Completed> {
        if (!r.ok()) return r.status();
        my_rev_ = *r;
        return Completed{};
      });
}

Future<Completed> DoubleBarrier::LeaveAsync(const CallOptions& call) {
  if (my_rev_ == 0) {
    return MakeReadyFuture<Completed>(absl::FailedPreconditionError("double barrier: not entered"));
  }
  auto l = std::make_shared<Leaving>(session_, name_, key_);
  return internal::Map<bool, Completed>(
      l->Start(call), [this](absl::StatusOr<bool> r) -> absl::StatusOr<Completed> {
        if (!r.ok()) return r.status();
        my_rev_ = 0;
        return Completed{};
      });
}

}  // namespace cairn::recipes
