#include "src/async_acquire.h"

#include <mutex>
#include <utility>

#include "src/internal.h"

namespace cairn::recipes::internal {
namespace {

// One waitDeletes loop. Kept alive by the callbacks of its pending step (an RPC or a watch);
// finishes exactly once (Finish), from whichever of the step, the cancel token or the session's
// end comes first.
class PredecessorWait : public std::enable_shared_from_this<PredecessorWait> {
 public:
  PredecessorWait(std::shared_ptr<Session> session, std::string prefix, Revision my_revision,
                  const CallOptions& call)
      : session_(std::move(session)),
        prefix_(std::move(prefix)),
        my_revision_(my_revision),
        call_(call),
        rpc_(RpcCall(call, DeadlineOf(call))) {}

  Future<bool> future() const { return promise_.future(); }

  void Start() {
    std::weak_ptr<PredecessorWait> weak = weak_from_this();
    uint64_t cancel_id = call_.cancel.Register([weak] {
      if (auto self = weak.lock()) self->Finish(absl::CancelledError("recipe call canceled"));
    });
    uint64_t end_id = session_->AddEndListener([weak](const absl::Status& why) {
      if (auto self = weak.lock()) self->Finish(why);
    });
    bool finished;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancel_id_ = cancel_id;
      end_id_ = end_id;
      finished = finished_;
    }
    if (finished) {  // canceled or ended inline, before the ids were known
      call_.cancel.Unregister(cancel_id);
      session_->RemoveEndListener(end_id);
      return;
    }
    Look();
  }

 private:
  void Look() {
    auto self = shared_from_this();
    session_->kv()
        .GetAsync(prefix_, ByCreate(false, my_revision_ - 1), rpc_)
        .Then([self](absl::StatusOr<GetResponse> r) { self->OnNewestOlder(std::move(r)); });
  }

  void OnNewestOlder(absl::StatusOr<GetResponse> r) {
    if (!r.ok()) return Finish(r.status());
    if (r->kvs.empty()) return Finish(absl::OkStatus());
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      generation = ++generation_;
    }
    WatchOptions wo;
    wo.start_revision = r->header.revision + 1;
    wo.filter_put = true;
    auto self = shared_from_this();
    auto watcher =
        session_->watch().Watch(r->kvs[0].key, wo, [self, generation](const WatchResponse& w) {
          if (!w.events.empty() || w.canceled) self->OnChange(generation);
        });
    if (!watcher.ok()) return Finish(watcher.status());
    std::unique_ptr<Watcher> drop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || generation != generation_) {
        drop = std::move(*watcher);
      } else {
        watcher_ = std::move(*watcher);
      }
    }
    if (drop) drop->Cancel();
  }

  // The watched key was deleted (or the watch ended, e.g. compaction): look again.
  void OnChange(uint64_t generation) {
    std::unique_ptr<Watcher> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || generation != generation_) return;
      ++generation_;  // later responses of this watch are ignored
      done = std::move(watcher_);
    }
    if (done) done->Cancel();  // on the watch thread, from its own callback: does not wait
    Look();
  }

  void Finish(absl::Status status) {
    std::unique_ptr<Watcher> watcher;
    uint64_t cancel_id;
    uint64_t end_id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
      watcher = std::move(watcher_);
      cancel_id = cancel_id_;
      end_id = end_id_;
    }
    call_.cancel.Unregister(cancel_id);
    session_->RemoveEndListener(end_id);
    if (watcher) watcher->Cancel();
    promise_.Set(status.ok() ? absl::StatusOr<bool>(true) : absl::StatusOr<bool>(status));
  }

  const std::shared_ptr<Session> session_;
  const std::string prefix_;
  const Revision my_revision_;
  const CallOptions call_;
  const CallOptions rpc_;
  Promise<bool> promise_;
  std::mutex mu_;
  bool finished_ = false;             // guarded by mu_
  uint64_t generation_ = 0;           // guarded by mu_: the current watch
  uint64_t cancel_id_ = 0;            // guarded by mu_
  uint64_t end_id_ = 0;               // guarded by mu_
  std::unique_ptr<Watcher> watcher_;  // guarded by mu_
};

// One acquisition: create (or find) the key, maybe update its value, wait, re-check.
class Acquisition : public std::enable_shared_from_this<Acquisition> {
 public:
  Acquisition(std::shared_ptr<Session> session, std::string key, std::string prefix,
              std::string value, bool update_value, const CallOptions& call)
      : session_(std::move(session)),
        key_(std::move(key)),
        prefix_(std::move(prefix)),
        value_(std::move(value)),
        update_value_(update_value),
        call_(call),
        deadline_(DeadlineOf(call)) {}

  Future<Grant> future() const { return promise_.future(); }

  // Future::Cancel on the result cancels the call as its token would (`cancel` is this call's
  // own token, linked to the caller's `parent`).
  void LinkCancel(CancelToken cancel, CancelToken parent) {
    parent_ = parent;
    parent_id_ = parent.Register([cancel] { cancel.Cancel(); });
    promise_.SetCancel([cancel] { cancel.Cancel(); });
  }

  void Start() {
    if (absl::Status st = CheckSession(*session_); !st.ok()) return Done(st);
    PutOptions po;
    po.lease = session_->lease();
    Txn txn;
    txn.If({Cmp::CreateRevision(key_) == 0})
        .Then({Op::Put(key_, value_, po)})
        .Else({Op::Get(key_)});
    auto self = shared_from_this();
    session_->kv()
        .CommitAsync(txn, CreateCall(call_, deadline_))
        .Then([self](absl::StatusOr<TxnResponse> r) { self->OnCreated(std::move(r)); });
  }

 private:
  void OnCreated(absl::StatusOr<TxnResponse> r) {
    if (!r.ok()) return Done(r.status());
    created_ = r->succeeded;
    my_revision_ = r->header.revision;
    if (!created_) {
      if (r->responses.empty() || r->responses[0].get.kvs.empty()) {
        return Done(absl::InternalError("recipe: own key missing from txn response"));
      }
      const KeyValue& mine = r->responses[0].get.kvs[0];
      my_revision_ = mine.create_revision;
      if (update_value_ && mine.value != value_) return Update();
    }
    Wait();
  }

  void Update() {
    PutOptions po;
    po.lease = session_->lease();
    Txn txn;
    txn.If({Cmp::CreateRevision(key_) == my_revision_}).Then({Op::Put(key_, value_, po)});
    auto self = shared_from_this();
    session_->kv()
        .CommitAsync(txn, RpcCall(call_, deadline_))
        .Then([self](absl::StatusOr<TxnResponse> r) {
          if (!r.ok()) return self->Done(r.status());
          if (!r->succeeded) {
            return self->Done(MakeError(ErrorKind::kLeaseLost, "recipe: own key vanished"));
          }
          self->Wait();
        });
  }

  void Wait() {
    auto self = shared_from_this();
    WaitPredecessorsGoneAsync(session_, prefix_, my_revision_, call_)
        .Then([self](absl::StatusOr<bool> r) {
          if (!r.ok()) return self->Fail(r.status());
          self->Check();
        });
  }

  // Our key (hence our lease) must still be there now that the older ones are gone.
  void Check() {
    auto self = shared_from_this();
    session_->kv()
        .GetAsync(key_, {}, RpcCall(call_, deadline_))
        .Then([self](absl::StatusOr<GetResponse> r) {
          if (!r.ok()) return self->Fail(r.status());
          if (r->kvs.empty() || r->kvs[0].create_revision != self->my_revision_ ||
              r->kvs[0].lease != self->session_->lease()) {
            absl::Status s = self->session_->status();
            if (!s.ok()) return self->Done(s);
            return self->Done(
                MakeError(ErrorKind::kLeaseLost, "recipe: own key vanished while waiting"));
          }
          Grant g;
          g.key = self->key_;
          g.fencing_token = self->my_revision_;
          g.lease = self->session_->lease();
          g.header = r->header;
          self->Done(std::move(g));
        });
  }

  // Removes the key this call created (best effort, bounded by the client's default deadline),
  // then reports `status`: a caller that learns of the failure (a timeout, a Ctrl-C in Python)
  // never finds its own stale waiter still queued.
  void Fail(const absl::Status& status) {
    if (!created_) return Done(status);
    Txn t;
    t.If({Cmp::CreateRevision(key_) == my_revision_}).Then({Op::Delete(key_)});
    auto self = shared_from_this();
    session_->kv().CommitAsync(t).Then(
        [self, status](const absl::StatusOr<TxnResponse>&) { self->Done(status); });
  }

  void Done(absl::StatusOr<Grant> result) {
    parent_.Unregister(parent_id_);
    promise_.Set(std::move(result));
  }

  const std::shared_ptr<Session> session_;
  const std::string key_;
  const std::string prefix_;
  const std::string value_;
  const bool update_value_;
  const CallOptions call_;
  const Clock::time_point deadline_;
  Promise<Grant> promise_;
  CancelToken parent_;
  uint64_t parent_id_ = 0;
  // Written by one step, read by the later ones (each started from the one before).
  bool created_ = false;
  Revision my_revision_ = 0;
};

}  // namespace

Future<bool> WaitPredecessorsGoneAsync(std::shared_ptr<Session> session, std::string prefix,
                                       Revision my_revision, const CallOptions& call) {
  auto wait =
      std::make_shared<PredecessorWait>(std::move(session), std::move(prefix), my_revision, call);
  Future<bool> f = wait->future();
  wait->Start();
  return f;
}

Future<Grant> AcquireAsync(std::shared_ptr<Session> session, std::string key, std::string prefix,
                           std::string value, bool update_value, const CallOptions& call) {
  CallOptions own = call;
  own.cancel = CancelToken::Make();
  auto a = std::make_shared<Acquisition>(std::move(session), std::move(key), std::move(prefix),
                                         std::move(value), update_value, own);
  a->LinkCancel(own.cancel, call.cancel);
  Future<Grant> f = a->future();
  a->Start();
  return f;
}

}  // namespace cairn::recipes::internal
