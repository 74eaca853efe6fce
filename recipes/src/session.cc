#include "cairn/recipes/session.h"

#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "src/internal.h"

namespace cairn::recipes {

struct Session::State {
  LeaseId lease = 0;
  bool revoke_on_close = true;
  std::function<void(const absl::Status&)> on_lost;

  mutable std::mutex mu;
  int64_t ttl_seconds = 0;
  absl::Status status;  // OK while alive
  uint64_t next_listener = 1;
  std::map<uint64_t, std::function<void(const absl::Status&)>> listeners;
  std::unique_ptr<LeaseKeepAlive> keeper;

  // Ends the session with `why` (first call wins). Returns false when it had already ended.
  bool End(const absl::Status& why, bool lost) {
    std::map<uint64_t, std::function<void(const absl::Status&)>> to_call;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!status.ok()) return false;
      status = why;
      to_call.swap(listeners);
    }
    // on_lost first, so it has run when Done()/Wait() report the end.
    if (lost && on_lost) on_lost(why);
    for (auto& [id, cb] : to_call) cb(why);
    return true;
  }
};

Session::Session(Kv kv, WatchClient watch, LeaseClient lease, std::shared_ptr<State> state)
    : kv_(std::move(kv)),
      watch_(std::move(watch)),
      lease_client_(std::move(lease)),
      state_(std::move(state)) {}

namespace {

struct Handles {
  Kv kv;
  WatchClient watch;
  LeaseClient lease;
};

absl::Status Validate(const SessionOptions& options) {
  if (options.lease < 0) return absl::InvalidArgumentError("session: negative lease id");
  if (options.keep_alive && options.lease == 0 && options.ttl_seconds <= 0) {
    return absl::InvalidArgumentError("session: ttl_seconds must be > 0");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<Session>> Session::Start(
    Kv kv, WatchClient watch, LeaseClient lease, LeaseId id, int64_t ttl,
    std::function<void(const absl::Status&)> on_lost, bool keep_alive, bool revoke_on_close) {
  auto state = std::make_shared<State>();
  state->on_lost = std::move(on_lost);
  state->lease = id;
  state->ttl_seconds = ttl;
  state->revoke_on_close = revoke_on_close;
  std::shared_ptr<Session> session(new Session(std::move(kv), std::move(watch), lease, state));
  if (!keep_alive) return session;  // an adopted lease: its owner keeps it (or not)
  KeepAliveOptions ko;
  std::weak_ptr<State> weak = state;
  ko.on_lost = [weak](const absl::Status& why) {
    if (auto s = weak.lock()) s->End(why, /*lost=*/true);
  };
  ko.on_renewed = [weak](int64_t renewed) {
    if (auto s = weak.lock()) {
      std::lock_guard<std::mutex> lock(s->mu);
      s->ttl_seconds = renewed;
    }
  };
  auto keeper = lease.KeepAlive(id, std::move(ko));
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->keeper = std::move(keeper);
  }
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> Session::Create(const Client& client,
                                                         SessionOptions options,
                                                         const CallOptions& call) {
  return CreateAsync(client, std::move(options), call).Get();
}

Future<std::shared_ptr<Session>> Session::CreateAsync(const Client& client, SessionOptions options,
                                                      const CallOptions& call) {
  if (absl::Status st = Validate(options); !st.ok()) {
    return MakeReadyFuture<std::shared_ptr<Session>>(st);
  }
  Handles h{client.kv(), client.watch(), client.lease()};
  auto on_lost = std::move(options.on_lost);
  const bool revoke = options.revoke_on_close;
  if (!options.keep_alive) {
    return MakeReadyFuture<std::shared_ptr<Session>>(
        Start(h.kv, h.watch, h.lease, options.lease, 0, on_lost, /*keep_alive=*/false, revoke));
  }
  if (options.lease == 0) {
    return internal::Map<LeaseGrantResponse, std::shared_ptr<Session>>(
        h.lease.GrantAsync(options.ttl_seconds, 0, call),
        [h, on_lost,
         revoke](absl::StatusOr<LeaseGrantResponse> g) -> absl::StatusOr<std::shared_ptr<Session>> {
          if (!g.ok()) return g.status();
          return Start(h.kv, h.watch, h.lease, g->id, g->ttl_seconds, on_lost, true, revoke);
        });
  }
  LeaseId id = options.lease;
  return internal::Map<LeaseTimeToLiveResponse, std::shared_ptr<Session>>(
      h.lease.TimeToLiveAsync(id, false, call),
      [h, on_lost, id, revoke](
          absl::StatusOr<LeaseTimeToLiveResponse> t) -> absl::StatusOr<std::shared_ptr<Session>> {
        if (!t.ok()) return t.status();
        if (t->ttl_seconds <= 0) {
          return MakeError(ErrorKind::kLeaseNotFound, "session: adopted lease does not exist");
        }
        return Start(h.kv, h.watch, h.lease, id, t->granted_ttl_seconds, on_lost, true, revoke);
      });
}

Session::~Session() {
  if (alive()) (void)Close();
}

LeaseId Session::lease() const { return state_->lease; }

int64_t Session::ttl_seconds() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->ttl_seconds;
}

const Kv& Session::kv() const { return kv_; }
const WatchClient& Session::watch() const { return watch_; }
const LeaseClient& Session::lease_client() const { return lease_client_; }

absl::Status Session::status() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->status;
}

Future<SessionEnd> Session::Done() const {
  Promise<SessionEnd> p;
  AddEndListener([p](const absl::Status& why) { p.Set(SessionEnd{why}); });
  return p.future();
}

absl::Status Session::Wait(const CallOptions& call) const {
  Promise<bool> p;
  uint64_t id = AddEndListener([p](const absl::Status&) { p.Set(true); });
  uint64_t cancel_id =
      call.cancel.Register([p] { p.Set(absl::CancelledError("session wait canceled")); });
  Future<bool> f = p.future();
  bool ready = f.WaitUntil(internal::DeadlineOf(call));
  call.cancel.Unregister(cancel_id);
  RemoveEndListener(id);
  if (!ready) return absl::DeadlineExceededError("session wait: deadline exceeded");
  auto r = f.Get();
  if (!r.ok()) return r.status();
  return status();
}

absl::Status Session::Close(const CallOptions& call) {
  std::unique_ptr<LeaseKeepAlive> keeper;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->status.ok()) return absl::OkStatus();
    keeper = std::move(state_->keeper);
  }
  if (keeper) keeper->Stop();
  if (!state_->End(absl::FailedPreconditionError("session closed"), /*lost=*/false)) {
    return absl::OkStatus();
  }
  if (!state_->revoke_on_close || state_->lease == 0) return absl::OkStatus();
  auto r = lease_client_.Revoke(state_->lease, call);
  if (!r.ok() && ErrorKindOf(r.status()) != ErrorKind::kLeaseNotFound) return r.status();
  return absl::OkStatus();
}

Future<Completed> Session::CloseAsync(const CallOptions& call) {
  std::unique_ptr<LeaseKeepAlive> keeper;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->status.ok()) return MakeReadyFuture<Completed>(Completed{});
    keeper = std::move(state_->keeper);
  }
  if (keeper) keeper->Stop();
  if (!state_->End(absl::FailedPreconditionError("session closed"), /*lost=*/false) ||
      !state_->revoke_on_close || state_->lease == 0) {
    return MakeReadyFuture<Completed>(Completed{});
  }
  return internal::Map<LeaseRevokeResponse, Completed>(
      lease_client_.RevokeAsync(state_->lease, call),
      [](absl::StatusOr<LeaseRevokeResponse> r) -> absl::StatusOr<Completed> {
        if (!r.ok() && ErrorKindOf(r.status()) != ErrorKind::kLeaseNotFound) return r.status();
        return Completed{};
      });
}

void Session::Orphan() {
  std::unique_ptr<LeaseKeepAlive> keeper;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->status.ok()) return;
    keeper = std::move(state_->keeper);
  }
  if (keeper) keeper->Stop();
  state_->End(absl::FailedPreconditionError("session orphaned"), /*lost=*/false);
}

uint64_t Session::AddEndListener(std::function<void(const absl::Status&)> cb) const {
  absl::Status ended;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->status.ok()) {
      uint64_t id = state_->next_listener++;
      state_->listeners.emplace(id, std::move(cb));
      return id;
    }
    ended = state_->status;
  }
  cb(ended);
  return 0;
}

void Session::RemoveEndListener(uint64_t id) const {
  if (id == 0) return;
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->listeners.erase(id);
}

}  // namespace cairn::recipes
