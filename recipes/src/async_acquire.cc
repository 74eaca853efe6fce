#include "src/async_acquire.h"

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "src/internal.h"

namespace cairn::recipes::internal {
namespace {

// Runs callbacks at their deadlines on one process-wide thread (started on first use, never
// joined: it outlives every wait), so that an async wait's deadline needs no thread of its own.
// Callbacks run without the timer's lock held; they must not block.
class DeadlineTimer {
 public:
  static DeadlineTimer& Get() {
    static DeadlineTimer* timer = new DeadlineTimer();  // leaked: its thread is detached
    return *timer;
  }

  // Schedules fn at `when`; returns an id for Cancel.
  uint64_t At(Clock::time_point when, std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t id = ++next_id_;
    due_.emplace(std::make_pair(when, id), std::move(fn));
    cv_.notify_one();
    return id;
  }

  // Drops the callback if it has not started (a no-op for id 0 or one already run).
  void Cancel(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = due_.begin(); it != due_.end(); ++it) {
      if (it->first.second == id) {
        due_.erase(it);
        return;
      }
    }
  }

 private:
  DeadlineTimer() {
    std::thread([this] { Run(); }).detach();
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (due_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto first = due_.begin();
      // A copy: wait_until reads its time point again after waking, and a Cancel while the lock
      // is released may have erased the entry that held it.
      const Clock::time_point when = first->first.first;
      if (Clock::now() < when) {
        cv_.wait_until(lock, when);
        continue;
      }
      std::function<void()> fn = std::move(first->second);
      due_.erase(first);
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_id_ = 0;                                                         // guarded by mu_
  std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> due_;  // guarded by mu_
};

// One wait for a change of a watched key (WaitForChangeAsync). Kept alive by the watch's
// callback, the cancel token, the timer and the session's listener until Finish.
class ChangeWait : public std::enable_shared_from_this<ChangeWait> {
 public:
  ChangeWait(std::shared_ptr<const Session> session, const CallOptions& call,
             Clock::time_point deadline)
      : session_(std::move(session)), call_(call), deadline_(deadline) {}

  Future<bool> future() const { return promise_.future(); }

  void Start(const WatchClient& watch, const std::string& key, const WatchOptions& opts) {
    std::weak_ptr<ChangeWait> weak = weak_from_this();
    auto self = shared_from_this();
    // The watch callback holds the wait until it is canceled (Finish).
    auto watcher = watch.Watch(key, opts, [self](const WatchResponse& w) {
      if (!w.events.empty() || w.canceled) self->Finish(absl::OkStatus());
    });
    if (!watcher.ok()) return Finish(watcher.status());
    uint64_t cancel_id = call_.cancel.Register([weak] {
      if (auto s = weak.lock()) s->Finish(absl::CancelledError("recipe call canceled"));
    });
    uint64_t end_id = 0;
    if (session_) {
      end_id = session_->AddEndListener([weak](const absl::Status& why) {
        if (auto s = weak.lock()) s->Finish(why);
      });
    }
    uint64_t timer_id = 0;
    if (deadline_ != Clock::time_point::max()) {
      timer_id = DeadlineTimer::Get().At(deadline_, [weak] {
        if (auto s = weak.lock()) {
          s->Finish(absl::DeadlineExceededError("recipe call deadline exceeded while waiting"));
        }
      });
    }
    bool finished;
    {
      std::lock_guard<std::mutex> lock(mu_);
      watcher_ = std::move(*watcher);
      cancel_id_ = cancel_id;
      end_id_ = end_id;
      timer_id_ = timer_id;
      finished = finished_;
    }
    if (finished) Release();  // finished before the ids were known
  }

 private:
  void Finish(absl::Status status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
    }
    Release();
    promise_.Set(status.ok() ? absl::StatusOr<bool>(true) : absl::StatusOr<bool>(status));
  }

  // Drops the watch and the registrations known so far (each exactly once).
  void Release() {
    std::unique_ptr<Watcher> watcher;
    uint64_t cancel_id, end_id, timer_id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      watcher = std::move(watcher_);
      cancel_id = std::exchange(cancel_id_, 0);
      end_id = std::exchange(end_id_, 0);
      timer_id = std::exchange(timer_id_, 0);
    }
    if (cancel_id != 0) call_.cancel.Unregister(cancel_id);
    if (session_ && end_id != 0) session_->RemoveEndListener(end_id);
    if (timer_id != 0) DeadlineTimer::Get().Cancel(timer_id);
    if (watcher) watcher->Cancel();  // from its own callback too: does not wait
  }

  const std::shared_ptr<const Session> session_;
  const CallOptions call_;
  const Clock::time_point deadline_;
  Promise<bool> promise_;
  std::mutex mu_;
  bool finished_ = false;             // guarded by mu_
  uint64_t cancel_id_ = 0;            // guarded by mu_
  uint64_t end_id_ = 0;               // guarded by mu_
  uint64_t timer_id_ = 0;             // guarded by mu_
  std::unique_ptr<Watcher> watcher_;  // guarded by mu_
};

// One waitDeletes loop. Kept alive by the callbacks of its pending step (an RPC or a watch);
// finishes exactly once (Finish), from whichever of the step, the cancel token or the session's
// end comes first.
class PredecessorWait : public std::enable_shared_from_this<PredecessorWait> {
 public:
  // `session` may be null (a wait that no session's end ends). With `exact`, `prefix` is one key
  // and the wait is for its deletion (my_revision and slots unused).
  PredecessorWait(Kv kv, WatchClient watch, std::shared_ptr<Session> session, std::string prefix,
                  Revision my_revision, const CallOptions& call, int64_t slots, bool exact)
      : kv_(std::move(kv)),
        watch_(std::move(watch)),
        session_(std::move(session)),
        exact_(exact),
        prefix_(std::move(prefix)),
        my_revision_(my_revision),
        slots_(slots),
        call_(call),
        deadline_(DeadlineOf(call)),
        rpc_(RpcCall(call, deadline_)) {}

  Future<bool> future() const { return promise_.future(); }

  void Start() {
    std::weak_ptr<PredecessorWait> weak = weak_from_this();
    uint64_t cancel_id = call_.cancel.Register([weak] {
      if (auto self = weak.lock()) self->Finish(absl::CancelledError("recipe call canceled"));
    });
    uint64_t end_id = 0;
    if (session_) {
      end_id = session_->AddEndListener([weak](const absl::Status& why) {
        if (auto self = weak.lock()) self->Finish(why);
      });
    }
    uint64_t timer_id = 0;
    if (deadline_ != Clock::time_point::max()) {
      timer_id = DeadlineTimer::Get().At(deadline_, [weak] {
        if (auto self = weak.lock()) {
          self->Finish(absl::DeadlineExceededError("recipe call deadline exceeded while waiting"));
        }
      });
    }
    bool finished;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancel_id_ = cancel_id;
      end_id_ = end_id;
      timer_id_ = timer_id;
      finished = finished_;
    }
    if (finished) {  // canceled or ended inline, before the ids were known
      call_.cancel.Unregister(cancel_id);
      if (session_) session_->RemoveEndListener(end_id);
      DeadlineTimer::Get().Cancel(timer_id);
      return;
    }
    Look();
  }

 private:
  // The newest `slots_` keys older than ours (keys only): fewer than that lets us in.
  // With exact_, the key itself.
  void Look() {
    GetOptions older = ByCreate(false, my_revision_ - 1);
    older.keys_only = true;
    older.limit = slots_;
    if (exact_) {
      older = GetOptions();
      older.keys_only = true;
    }
    auto self = shared_from_this();
    kv_.GetAsync(prefix_, older, rpc_).Then([self](absl::StatusOr<GetResponse> r) {
      self->OnNewestOlder(std::move(r));
    });
  }

  void OnNewestOlder(absl::StatusOr<GetResponse> r) {
    if (!r.ok()) return Finish(r.status());
    if (static_cast<int64_t>(r->kvs.size()) < slots_) return Finish(absl::OkStatus());
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      generation = ++generation_;
    }
    WatchOptions wo;
    wo.start_revision = r->header.revision + 1;
    wo.filter_put = true;
    // One slot: only the newest older key can let us in. More: any deletion under the prefix
    // may (each release wakes every waiter for one look).
    std::string watched = r->kvs[0].key;
    if (slots_ > 1) {
      watched = prefix_;
      wo.prefix = true;
    }
    auto self = shared_from_this();
    auto watcher = watch_.Watch(watched, wo, [self, generation](const WatchResponse& w) {
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
    uint64_t timer_id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
      watcher = std::move(watcher_);
      cancel_id = cancel_id_;
      end_id = end_id_;
      timer_id = timer_id_;
    }
    call_.cancel.Unregister(cancel_id);
    if (session_) session_->RemoveEndListener(end_id);
    DeadlineTimer::Get().Cancel(timer_id);
    if (watcher) watcher->Cancel();
    promise_.Set(status.ok() ? absl::StatusOr<bool>(true) : absl::StatusOr<bool>(status));
  }

  const Kv kv_;
  const WatchClient watch_;
  const std::shared_ptr<Session> session_;
  const bool exact_;
  const std::string prefix_;
  const Revision my_revision_;
  const int64_t slots_;
  const CallOptions call_;
  const Clock::time_point deadline_;
  const CallOptions rpc_;
  Promise<bool> promise_;
  std::mutex mu_;
  bool finished_ = false;             // guarded by mu_
  uint64_t generation_ = 0;           // guarded by mu_: the current watch
  uint64_t cancel_id_ = 0;            // guarded by mu_
  uint64_t end_id_ = 0;               // guarded by mu_
  uint64_t timer_id_ = 0;             // guarded by mu_
  std::unique_ptr<Watcher> watcher_;  // guarded by mu_
};

// One acquisition: create (or find) the key, maybe update its value, wait, re-check.
class Acquisition : public std::enable_shared_from_this<Acquisition> {
 public:
  Acquisition(std::shared_ptr<Session> session, std::string key, std::string prefix,
              std::string value, bool update_value, const CallOptions& call, int64_t slots)
      : session_(std::move(session)),
        key_(std::move(key)),
        prefix_(std::move(prefix)),
        value_(std::move(value)),
        update_value_(update_value),
        slots_(slots),
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
    if (call_.cancel.canceled()) return Done(absl::CancelledError("recipe call canceled"));
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
    CallOptions wait = call_;  // the same overall deadline as the create (not a new timeout)
    wait.deadline = deadline_;
    wait.timeout = std::chrono::milliseconds(0);
    WaitPredecessorsGoneAsync(session_, prefix_, my_revision_, wait, slots_)
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
  const int64_t slots_;
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

uint64_t RunAt(Clock::time_point when, std::function<void()> fn) {
  return DeadlineTimer::Get().At(when, std::move(fn));
}

void CancelTimer(uint64_t id) {
  if (id != 0) DeadlineTimer::Get().Cancel(id);
}

Future<bool> Bounded(Promise<bool> p, const CallOptions& call, std::string deadline_message) {
  CancelToken cancel = call.cancel;
  uint64_t cancel_id =
      cancel.Register([p] { p.Set(absl::CancelledError("recipe call canceled")); });
  Clock::time_point deadline = DeadlineOf(call);
  uint64_t timer_id = 0;
  if (deadline != Clock::time_point::max()) {
    timer_id = DeadlineTimer::Get().At(deadline, [p, msg = std::move(deadline_message)] {
      p.Set(absl::DeadlineExceededError(msg));
    });
  }
  // Completing `p` drops this (FutureState::Complete), so the cycle through `p` ends there.
  p.SetCancel([p] { p.Set(absl::CancelledError("recipe call canceled")); });
  return Map<bool, bool>(
      p.future(), [cancel, cancel_id, timer_id](absl::StatusOr<bool> r) -> absl::StatusOr<bool> {
        cancel.Unregister(cancel_id);
        if (timer_id != 0) DeadlineTimer::Get().Cancel(timer_id);
        return r;
      });
}

Future<bool> WaitForChangeAsync(WatchClient watch, std::string key, WatchOptions opts,
                                const CallOptions& call, Clock::time_point deadline,
                                std::shared_ptr<const Session> session) {
  if (call.cancel.canceled()) {
    return MakeReadyFuture<bool>(absl::CancelledError("recipe call canceled"));
  }
  auto wait = std::make_shared<ChangeWait>(std::move(session), call, deadline);
  Future<bool> f = wait->future();
  wait->Start(watch, key, opts);
  return f;
}

Future<bool> WaitPredecessorsGoneAsync(std::shared_ptr<Session> session, std::string prefix,
                                       Revision my_revision, const CallOptions& call,
                                       int64_t slots) {
  if (slots <= 0) return MakeReadyFuture<bool>(absl::InvalidArgumentError("slots must be > 0"));
  Kv kv = session->kv();
  WatchClient watch = session->watch();
  auto wait = std::make_shared<PredecessorWait>(std::move(kv), std::move(watch), std::move(session),
                                                std::move(prefix), my_revision, call, slots,
                                                /*exact=*/false);
  Future<bool> f = wait->future();
  wait->Start();
  return f;
}

Future<bool> WaitKeyGoneAsync(Kv kv, WatchClient watch, std::string key, const CallOptions& call) {
  auto wait = std::make_shared<PredecessorWait>(std::move(kv), std::move(watch), nullptr,
                                                std::move(key), 0, call, 1, /*exact=*/true);
  Future<bool> f = wait->future();
  wait->Start();
  return f;
}

Future<Grant> AcquireAsync(std::shared_ptr<Session> session, std::string key, std::string prefix,
                           std::string value, bool update_value, const CallOptions& call,
                           int64_t slots) {
  if (slots <= 0) return MakeReadyFuture<Grant>(absl::InvalidArgumentError("slots must be > 0"));
  CallOptions own = call;
  own.cancel = CancelToken::Make();
  auto a = std::make_shared<Acquisition>(std::move(session), std::move(key), std::move(prefix),
                                         std::move(value), update_value, own, slots);
  a->LinkCancel(own.cancel, call.cancel);
  Future<Grant> f = a->future();
  a->Start();
  return f;
}

}  // namespace cairn::recipes::internal
