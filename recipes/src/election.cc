#include "cairn/recipes/election.h"

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes {

namespace {

LeaderInfo InfoOf(const KeyValue& kv) {
  LeaderInfo li;
  li.key = kv.key;
  li.value = kv.value;
  li.create_revision = kv.create_revision;
  li.mod_revision = kv.mod_revision;
  li.lease = kv.lease;
  return li;
}

}  // namespace

absl::StatusOr<LeaderInfo> GetLeader(const Kv& kv, const std::string& name,
                                     const CallOptions& call) {
  return GetLeaderAsync(kv, name, call).Get();
}

Future<LeaderInfo> GetLeaderAsync(const Kv& kv, const std::string& name, const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name, "election"); !st.ok()) {
    return MakeReadyFuture<LeaderInfo>(st);
  }
  return internal::Map<GetResponse, LeaderInfo>(
      kv.GetAsync(name + "/", internal::ByCreate(true), call),
      [](absl::StatusOr<GetResponse> r) -> absl::StatusOr<LeaderInfo> {
        if (!r.ok()) return r.status();
        if (r->kvs.empty()) return absl::NotFoundError("election: no leader");
        return InfoOf(r->kvs[0]);
      });
}

// ---- LeaderObserver ----------------------------------------------------------------------

struct LeaderObserver::State {
  Callback callback;
  std::mutex update_mu;  // taken before mu
  std::mutex mu;
  std::optional<LeaderInfo> current;
  Revision revision = 0;  // of the cache contents `current` was computed from
  // A pending WaitForAsync: completed by Update (the leader it saw in `seen`), or ended by its
  // deadline/cancel (`done`, dropped at the next Update or wait).
  struct Waiter {
    std::function<bool(const LeaderInfo&)> pred;
    Promise<bool> promise;
    std::shared_ptr<LeaderInfo> seen;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Waiter> waiters;

  // Recomputes the leader from the cache's contents at `rev` and reports a change. Contents
  // older than the last seen are ignored (the first update races with the listener's).
  void Update(const std::vector<KeyValue>& all, Revision rev) {
    std::lock_guard<std::mutex> serial(update_mu);  // callbacks in order, one at a time
    std::optional<LeaderInfo> leader;
    for (const KeyValue& kv : all) {
      if (!leader.has_value() || kv.create_revision < leader->create_revision) {
        leader = InfoOf(kv);
      }
    }
    bool changed = false;
    std::vector<Promise<bool>> ready;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (rev < revision) return;
      revision = rev;
      if (leader != current) {
        current = leader;
        changed = leader.has_value();
        if (changed) {
          auto it = waiters.begin();
          while (it != waiters.end()) {
            if (it->done->load()) {
              it = waiters.erase(it);
            } else if (it->pred(*leader)) {
              *it->seen = *leader;
              ready.push_back(it->promise);
              it = waiters.erase(it);
            } else {
              ++it;
            }
          }
        }
      }
    }
    // Outside the lock: a continuation may start another wait.
    for (auto& p : ready) p.Set(true);
    if (changed && callback) callback(*leader);
  }
};

absl::StatusOr<std::unique_ptr<LeaderObserver>> LeaderObserver::Start(const Kv& kv,
                                                                      const WatchClient& watch,
                                                                      std::string name,
                                                                      Callback callback,
                                                                      const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name, "election"); !st.ok()) return st;
  auto cache = PrefixCache::Start(kv, watch, name + "/", call);
  if (!cache.ok()) return cache.status();
  std::unique_ptr<LeaderObserver> obs(new LeaderObserver());
  obs->state_ = std::make_shared<State>();
  obs->state_->callback = std::move(callback);
  obs->cache_ = std::move(*cache);
  PrefixCache* c = obs->cache_.get();
  std::shared_ptr<State> st = obs->state_;
  // The listener reads the cache under the delivery order, so updates are seen in order.
  c->AddListener([st, c](const std::vector<Event>&, Revision, bool) {
    Revision rev = 0;
    auto all = c->List(&rev);
    st->Update(all, rev);
  });
  Revision rev = 0;
  auto all = c->List(&rev);
  st->Update(all, rev);
  return obs;
}

LeaderObserver::~LeaderObserver() {
  cache_.reset();  // no update runs after this
  std::vector<Promise<bool>> pending;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    for (auto& w : state_->waiters) pending.push_back(w.promise);
    state_->waiters.clear();
  }
  for (auto& p : pending) p.Set(absl::CancelledError("observer destroyed"));
}

std::optional<LeaderInfo> LeaderObserver::current() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->current;
}

absl::StatusOr<LeaderInfo> LeaderObserver::WaitFor(std::function<bool(const LeaderInfo&)> pred,
                                                   const CallOptions& call) {
  return WaitForAsync(std::move(pred), call).Get();
}

Future<LeaderInfo> LeaderObserver::WaitForAsync(std::function<bool(const LeaderInfo&)> pred,
                                                const CallOptions& call) {
  // Thread-free: a waiter the observer's updates complete, ended early by the cancel token or
  // the recipes' timer at the deadline.
  Promise<bool> p;
  auto seen = std::make_shared<LeaderInfo>();
  auto done = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->current.has_value() && pred(*state_->current)) {
      return MakeReadyFuture<LeaderInfo>(*state_->current);
    }
    auto& w = state_->waiters;
    w.erase(
        std::remove_if(w.begin(), w.end(), [](const State::Waiter& x) { return x.done->load(); }),
        w.end());
    w.push_back(State::Waiter{std::move(pred), p, seen, done});
  }
  return internal::Map<bool, LeaderInfo>(
      internal::Bounded(p, call, "election observer: deadline exceeded"),
      [seen, done](absl::StatusOr<bool> r) -> absl::StatusOr<LeaderInfo> {
        done->store(true);
        if (!r.ok()) return r.status();
        return *seen;
      });
}

// ---- Election ----------------------------------------------------------------------------

Election::Election(std::shared_ptr<Session> session, std::string name)
    : session_(std::move(session)), name_(std::move(name)) {
  prefix_ = name_ + "/";
  key_ = prefix_ + internal::LeaseHex(session_->lease());
}

Election::Election(std::shared_ptr<Session> session, std::string name, Grant leadership)
    : Election(std::move(session), std::move(name)) {
  key_ = leadership.key;
  grant_ = std::move(leadership);
}

Future<Grant> Election::CampaignAsync(const std::string& value, const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name_, "election"); !st.ok()) {
    return MakeReadyFuture<Grant>(st);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value()) {
      return MakeReadyFuture<Grant>(
          absl::FailedPreconditionError("election: already leader through this object"));
    }
  }
  return internal::Map<Grant, Grant>(
      internal::AcquireAsync(session_, key_, prefix_, value, /*update_value=*/true, call),
      [this](absl::StatusOr<Grant> g) -> absl::StatusOr<Grant> {
        if (g.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          grant_ = *g;
        }
        return g;
      });
}

Future<ResponseHeader> Election::ProclaimAsync(const std::string& value, const CallOptions& call) {
  std::optional<Grant> g = leadership();
  if (!g.has_value()) {
    return MakeReadyFuture<ResponseHeader>(absl::FailedPreconditionError("election: not leader"));
  }
  PutOptions po;
  po.lease = g->lease;
  Txn txn;
  txn.If({g->Guard()}).Then({Op::Put(g->key, value, po)});
  return internal::Map<TxnResponse, ResponseHeader>(
      session_->kv().CommitAsync(txn, call),
      [this](absl::StatusOr<TxnResponse> r) -> absl::StatusOr<ResponseHeader> {
        if (!r.ok()) return r.status();
        if (!r->succeeded) {
          std::lock_guard<std::mutex> lock(mu_);
          grant_.reset();
          return absl::FailedPreconditionError("election: not leader (leadership lost)");
        }
        return r->header;
      });
}

Future<ResponseHeader> Election::ResignAsync(const CallOptions& call) {
  std::optional<Grant> g = leadership();
  if (!g.has_value()) return MakeReadyFuture<ResponseHeader>(ResponseHeader());
  Txn txn;
  txn.If({g->Guard()}).Then({Op::Delete(g->key)});
  return internal::Map<TxnResponse, ResponseHeader>(
      session_->kv().CommitAsync(txn, call),
      [this](absl::StatusOr<TxnResponse> r) -> absl::StatusOr<ResponseHeader> {
        if (!r.ok()) return r.status();
        std::lock_guard<std::mutex> lock(mu_);
        grant_.reset();
        return r->header;
      });
}

absl::StatusOr<Grant> Election::Campaign(const std::string& value, const CallOptions& call) {
  if (absl::Status st = internal::CheckName(name_, "election"); !st.ok()) return st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (grant_.has_value()) {
      return absl::FailedPreconditionError("election: already leader through this object");
    }
  }
  internal::QueuedKey q;
  q.key = key_;
  q.value = value;
  q.wait_prefix = prefix_;
  q.update_value = true;
  auto r = internal::AcquireQueued(*session_, q, /*wait=*/true, call, "election");
  if (!r.ok()) return r.status();
  if (!r->has_value()) return absl::InternalError("election: wait ended without leadership");
  std::lock_guard<std::mutex> lock(mu_);
  grant_ = **r;
  return **r;
}

absl::Status Election::Proclaim(const std::string& value, const CallOptions& call) {
  std::optional<Grant> g = leadership();
  if (!g.has_value()) return absl::FailedPreconditionError("election: not leader");
  PutOptions po;
  po.lease = g->lease;
  Txn txn;
  txn.If({g->Guard()}).Then({Op::Put(g->key, value, po)});
  auto resp = session_->kv().Commit(txn, call);
  if (!resp.ok()) return resp.status();
  if (!resp->succeeded) {
    std::lock_guard<std::mutex> lock(mu_);
    grant_.reset();
    return absl::FailedPreconditionError("election: not leader (leadership lost)");
  }
  return absl::OkStatus();
}

absl::Status Election::Resign(const CallOptions& call) {
  std::optional<Grant> g = leadership();
  if (!g.has_value()) return absl::OkStatus();
  if (absl::Status st = internal::DeleteGranted(session_->kv(), *g, call); !st.ok()) return st;
  std::lock_guard<std::mutex> lock(mu_);
  grant_.reset();
  return absl::OkStatus();
}

absl::StatusOr<LeaderInfo> Election::Leader(const CallOptions& call) const {
  return GetLeader(session_->kv(), name_, call);
}

Future<LeaderInfo> Election::LeaderAsync(const CallOptions& call) const {
  return GetLeaderAsync(session_->kv(), name_, call);
}

absl::StatusOr<std::unique_ptr<LeaderObserver>> Election::Observe(LeaderObserver::Callback callback,
                                                                  const CallOptions& call) const {
  return LeaderObserver::Start(session_->kv(), session_->watch(), name_, std::move(callback), call);
}

std::optional<Grant> Election::leadership() const {
  std::lock_guard<std::mutex> lock(mu_);
  return grant_;
}

}  // namespace cairn::recipes
