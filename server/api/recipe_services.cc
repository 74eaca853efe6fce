#include "server/api/recipe_services.h"

#include <atomic>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "cairn/errors.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/mutex.h"
#include "client/src/in_process.h"
#include "server/api/auth_gate.h"
#include "server/api/status.h"
#include "server/base/errors.h"

namespace cairn::api {

// ---- RecipeHost ---------------------------------------------------------------------------

absl::Status RecipeHost::Start(std::shared_ptr<grpc::Channel> channel,
                               const std::string& internal_token) {
  auto client = internal::ClientFactory::ConnectInProcess(std::move(channel), {}, internal_token);
  if (!client.ok()) return client.status();
  std::vector<std::function<void()>> deferred;
  {
    absl::MutexLock l(&mu_);
    if (stopped_) return base::MakeError(base::ErrorKind::kStopped);
    client_ = std::move(*client);
    deferred.swap(deferred_);
  }
  for (auto& fn : deferred) fn();
  return absl::OkStatus();
}

void RecipeHost::WhenStarted(std::function<void()> fn) {
  {
    absl::MutexLock l(&mu_);
    if (client_ == nullptr) {
      if (!stopped_) deferred_.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

void RecipeHost::Stop() {
  std::map<uint64_t, std::function<void()>> calls;
  std::unique_ptr<Client> client;
  std::vector<std::function<void()>> deferred;  // dropped: their calls end below
  {
    absl::MutexLock l(&mu_);
    stopped_ = true;
    calls.swap(calls_);
    deferred.swap(deferred_);
    client = std::move(client_);
  }
  for (auto& [id, stop] : calls) stop();
  client.reset();  // after the calls ended: their late steps fail with "client closed"
}

absl::StatusOr<uint64_t> RecipeHost::Add(std::function<void()> stop) {
  absl::MutexLock l(&mu_);
  if (stopped_) return base::MakeError(base::ErrorKind::kStopped);
  if (calls_.size() >= kMaxRecipeCalls) return base::MakeError(base::ErrorKind::kTooManyRequests);
  uint64_t id = next_id_++;
  calls_.emplace(id, std::move(stop));
  return id;
}

void RecipeHost::Remove(uint64_t id) {
  absl::MutexLock l(&mu_);
  calls_.erase(id);
}

absl::StatusOr<std::shared_ptr<recipes::Session>> RecipeHost::AdoptLease(int64_t lease) {
  recipes::SessionOptions options;
  options.lease = lease;
  options.keep_alive = false;
  options.revoke_on_close = false;
  absl::ReaderMutexLock l(&mu_);
  if (client_ == nullptr) return base::MakeError(base::ErrorKind::kStopped);
  // With keep_alive = false the future is ready: no RPC, no wait.
  return recipes::Session::CreateAsync(*client_, std::move(options)).Get();
}

absl::StatusOr<Kv> RecipeHost::kv() {
  absl::ReaderMutexLock l(&mu_);
  if (client_ == nullptr) return base::MakeError(base::ErrorKind::kStopped);
  return client_->kv();
}

absl::StatusOr<WatchClient> RecipeHost::watch() {
  absl::ReaderMutexLock l(&mu_);
  if (client_ == nullptr) return base::MakeError(base::ErrorKind::kStopped);
  return client_->watch();
}

namespace {

const absl::Status kNotLeader = absl::UnknownError("election: not leader");
const absl::Status kNoLeader = absl::UnknownError("election: no leader");
const absl::Status kNoLeaderField = absl::UnknownError("\"leader\" field must be provided");

void ToProto(const ResponseHeader& from, etcdserverpb::ResponseHeader* to) {
  to->set_cluster_id(from.cluster_id);
  to->set_member_id(from.member_id);
  to->set_revision(from.revision);
  to->set_raft_term(from.raft_term);
}

void ToProto(const KeyValue& from, mvccpb::KeyValue* to) {
  to->set_key(from.key);
  to->set_value(from.value);
  to->set_create_revision(from.create_revision);
  to->set_mod_revision(from.mod_revision);
  to->set_version(from.version);
  to->set_lease(from.lease);
}

// An error of the recipe (its client's calls) as etcd's servers return it: they run Go's
// concurrency package on an embedded client, whose errors are plain Go errors to gRPC, so the
// caller sees code Unknown with the error's message (e.g. Unknown "etcdserver: requested lease
// not found" for an unknown lease). CANCELLED stays (the caller went away). A key that vanished
// while its call waited (its lease expired or was revoked: the recipes' kLeaseLost) is reported
// as the lease not found.
absl::Status RecipeError(const absl::Status& st) {
  if (st.code() == absl::StatusCode::kCancelled) return st;
  if (ErrorKindOf(st) == ErrorKind::kLeaseLost) {
    return absl::UnknownError(base::MakeError(base::ErrorKind::kLeaseNotFound).message());
  }
  return absl::UnknownError(st.message());
}

// The oldest key under "<name>/": the leader (etcd's election layout).
GetOptions FirstCreated() {
  GetOptions o;
  o.prefix = true;
  o.sort_target = SortTarget::kCreate;
  o.sort_order = SortOrder::kAscend;
  o.limit = 1;
  return o;
}

// A unary call in flight. Whichever comes first of the recipe's result, the caller's cancel and
// the host's Stop claims it; only the claimer writes the response and runs `done` (which counts
// the outcome in the gate and finishes the reactor).
struct PendingCall {
  std::atomic<bool> claimed{false};
  CancelToken cancel = CancelToken::Make();
  RequestGate::Done done;

  bool Claim() { return !claimed.exchange(true); }
  void End(const absl::Status& status) {
    if (Claim()) done(status);
  }
  // The options of the recipe call: canceled with the RPC. No deadline of its own (the caller's
  // deadline cancels the RPC); each step's RPC has the client's default timeout.
  CallOptions Options() const {
    CallOptions o;
    o.cancel = cancel;
    return o;
  }
};

class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  // Admits the call through the gate and registers it with the host; then, unless it already
  // ended (refused, the host stopped or full), runs `body` with its pending state once the host
  // has its client (at once, but for a call that came before the end of ClientServer::Start).
  // `body` may run after the call ended (canceled meanwhile): it holds a copy of the request and
  // writes the response only once it has claimed the call.
  // `authorized` is the caller's permission check (auth_gate.h), run once admitted.
  static UnaryCall* Begin(RecipeHost* host, RequestGate* gate, Method method,
                          const std::function<absl::Status()>& authorized,
                          std::function<void(std::shared_ptr<PendingCall>)> body) {
    auto* reactor = new UnaryCall(host);
    std::shared_ptr<PendingCall> call = reactor->call_;
    call->done = [reactor](absl::Status st) { reactor->Finish(ToGrpc(st)); };
    if (!gate->Admit(method, &call->done)) {
      call->claimed = true;  // the gate finished it
      return reactor;
    }
    if (absl::Status st = authorized(); !st.ok()) {
      call->End(RecipeError(st));  // as etcd passes on its embedded client's refusal
      return reactor;
    }
    auto id = host->Add([call] {
      call->End(base::MakeError(base::ErrorKind::kStopped));  // first: the cancel ends it too
      call->cancel.Cancel();
    });
    if (!id.ok()) {
      call->End(id.status());
      return reactor;
    }
    reactor->id_ = *id;
    host->WhenStarted([call, body = std::move(body)] { body(call); });
    return reactor;
  }

  // The caller went away (disconnect, deadline): the recipe is canceled (it removes the key it
  // created) and the RPC ends now.
  void OnCancel() override {
    call_->End(absl::CancelledError("context canceled"));
    call_->cancel.Cancel();
  }
  void OnDone() override {
    if (id_ != 0) host_->Remove(id_);
    delete this;
  }

 private:
  explicit UnaryCall(RecipeHost* host) : host_(host), call_(std::make_shared<PendingCall>()) {}
  RecipeHost* host_;
  std::shared_ptr<PendingCall> call_;
  uint64_t id_ = 0;  // set in Begin; 0: not registered
};

}  // namespace

// ---- Lock -----------------------------------------------------------------------------------

grpc::ServerUnaryReactor* LockService::Lock(grpc::CallbackServerContext* ctx,
                                            const v3lockpb::LockRequest* req,
                                            v3lockpb::LockResponse* resp) {
  auto authorized = [&] { return AuthorizeLock(auth_, CallerOf(*ctx), req->name(), req->lease()); };
  return UnaryCall::Begin(host_, gate_, Method::kLock, authorized,
                          [host = host_, req = *req, resp](std::shared_ptr<PendingCall> call) {
                            auto session = host->AdoptLease(req.lease());
                            if (!session.ok()) {
                              call->End(session.status());
                              return;
                            }
                            auto mutex = std::make_shared<recipes::Mutex>(*session, req.name());
                            mutex->LockAsync(call->Options())
                                .Then([call = call, mutex, resp](absl::StatusOr<recipes::Grant> g) {
                                  if (!g.ok()) return call->End(RecipeError(g.status()));
                                  if (!call->Claim()) return;
                                  resp->set_key(g->key);
                                  ToProto(g->header, resp->mutable_header());
                                  call->done(absl::OkStatus());
                                });
                          });
}

grpc::ServerUnaryReactor* LockService::Unlock(grpc::CallbackServerContext* ctx,
                                              const v3lockpb::UnlockRequest* req,
                                              v3lockpb::UnlockResponse* resp) {
  auto authorized = [&] {
    etcdserverpb::DeleteRangeRequest del;
    del.set_key(req->key());
    return Authorize(auth_, CallerOf(*ctx), del);
  };
  return UnaryCall::Begin(host_, gate_, Method::kUnlock, authorized,
                          [host = host_, req = *req, resp](std::shared_ptr<PendingCall> call) {
                            auto kv = host->kv();
                            if (!kv.ok()) {
                              call->End(kv.status());
                              return;
                            }
                            kv->DeleteAsync(req.key(), {}, call->Options())
                                .Then([call = call, resp](absl::StatusOr<DeleteResponse> d) {
                                  if (!d.ok()) return call->End(RecipeError(d.status()));
                                  if (!call->Claim()) return;
                                  ToProto(d->header, resp->mutable_header());
                                  call->done(absl::OkStatus());
                                });
                          });
}

// ---- Election -------------------------------------------------------------------------------

grpc::ServerUnaryReactor* ElectionService::Campaign(grpc::CallbackServerContext* ctx,
                                                    const v3electionpb::CampaignRequest* req,
                                                    v3electionpb::CampaignResponse* resp) {
  auto authorized = [&] {
    return AuthorizeCampaign(auth_, CallerOf(*ctx), req->name(), req->lease());
  };
  return UnaryCall::Begin(
      host_, gate_, Method::kCampaign, authorized,
      [host = host_, req = *req, resp](std::shared_ptr<PendingCall> call) {
        auto session = host->AdoptLease(req.lease());
        if (!session.ok()) {
          call->End(session.status());
          return;
        }
        auto election = std::make_shared<recipes::Election>(*session, req.name());
        election->CampaignAsync(req.value(), call->Options())
            .Then([call = call, election, req, resp](absl::StatusOr<recipes::Grant> g) {
              if (!g.ok()) return call->End(RecipeError(g.status()));
              if (!call->Claim()) return;
              ToProto(g->header, resp->mutable_header());
              auto* leader = resp->mutable_leader();
              leader->set_name(req.name());
              leader->set_key(g->key);
              leader->set_rev(g->fencing_token);
              leader->set_lease(g->lease);
              call->done(absl::OkStatus());
            });
      });
}

namespace {

// The election a Proclaim or Resign names, resumed from its LeaderKey (etcd's ResumeElection).
absl::StatusOr<std::shared_ptr<recipes::Election>> Resume(RecipeHost* host,
                                                          const v3electionpb::LeaderKey& leader) {
  auto session = host->AdoptLease(leader.lease());
  if (!session.ok()) return session.status();
  recipes::Grant g;
  g.key = leader.key();
  g.fencing_token = leader.rev();
  g.lease = leader.lease();
  return std::make_shared<recipes::Election>(*session, leader.name(), std::move(g));
}

}  // namespace

grpc::ServerUnaryReactor* ElectionService::Proclaim(grpc::CallbackServerContext* ctx,
                                                    const v3electionpb::ProclaimRequest* req,
                                                    v3electionpb::ProclaimResponse* resp) {
  auto authorized = [&] { return AuthorizeLeaderKey(auth_, CallerOf(*ctx), req->leader().key()); };
  return UnaryCall::Begin(
      host_, gate_, Method::kProclaim, authorized,
      [host = host_, req = *req, resp](std::shared_ptr<PendingCall> call) {
        if (!req.has_leader()) {
          call->End(kNoLeaderField);
          return;
        }
        auto election = Resume(host, req.leader());
        if (!election.ok()) {
          call->End(election.status());
          return;
        }
        (*election)
            ->ProclaimAsync(req.value(), call->Options())
            .Then([call = call, e = *election, resp](absl::StatusOr<ResponseHeader> h) {
              if (!h.ok()) {
                // The recipe's "not leader" (the key is gone or is another's) is etcd's error.
                if (h.status().code() == absl::StatusCode::kFailedPrecondition) {
                  return call->End(kNotLeader);
                }
                return call->End(RecipeError(h.status()));
              }
              if (!call->Claim()) return;
              ToProto(*h, resp->mutable_header());
              call->done(absl::OkStatus());
            });
      });
}

grpc::ServerUnaryReactor* ElectionService::Resign(grpc::CallbackServerContext* ctx,
                                                  const v3electionpb::ResignRequest* req,
                                                  v3electionpb::ResignResponse* resp) {
  auto authorized = [&] { return AuthorizeLeaderKey(auth_, CallerOf(*ctx), req->leader().key()); };
  return UnaryCall::Begin(
      host_, gate_, Method::kResign, authorized,
      [host = host_, req = *req, resp](std::shared_ptr<PendingCall> call) {
        if (!req.has_leader()) {
          call->End(kNoLeaderField);
          return;
        }
        auto election = Resume(host, req.leader());
        if (!election.ok()) {
          call->End(election.status());
          return;
        }
        (*election)
            ->ResignAsync(call->Options())
            .Then([call = call, e = *election, resp](absl::StatusOr<ResponseHeader> h) {
              if (!h.ok()) return call->End(RecipeError(h.status()));
              if (!call->Claim()) return;
              ToProto(*h, resp->mutable_header());
              call->done(absl::OkStatus());
            });
      });
}

grpc::ServerUnaryReactor* ElectionService::Leader(grpc::CallbackServerContext* ctx,
                                                  const v3electionpb::LeaderRequest* req,
                                                  v3electionpb::LeaderResponse* resp) {
  auto authorized = [&] { return AuthorizeElectionRead(auth_, CallerOf(*ctx), req->name()); };
  return UnaryCall::Begin(host_, gate_, Method::kLeader, authorized,
                          [host = host_, req = *req, resp](std::shared_ptr<PendingCall> call) {
                            auto kv = host->kv();
                            if (!kv.ok()) {
                              call->End(kv.status());
                              return;
                            }
                            // Not recipes::GetLeaderAsync: the response carries the leader's whole
                            // KeyValue (version too) and the read's header.
                            kv->GetAsync(req.name() + "/", FirstCreated(), call->Options())
                                .Then([call = call, resp](absl::StatusOr<GetResponse> r) {
                                  if (!r.ok()) return call->End(RecipeError(r.status()));
                                  if (r->kvs.empty()) return call->End(kNoLeader);
                                  if (!call->Claim()) return;
                                  ToProto(r->header, resp->mutable_header());
                                  ToProto(r->kvs[0], resp->mutable_kv());
                                  call->done(absl::OkStatus());
                                });
                          });
}

// ---- Observe ------------------------------------------------------------------------------

namespace {

class ObserveStream;

// Follows the leader of one election for one Observe stream (etcd's Election.Observe): reads the
// leader, sends it, watches its key (each new value is sent; its deletion means a new election:
// read again); with no leader, watches the prefix until a key appears. Shared by the stream and
// the callbacks of its pending step; the stream detaches it in OnDone.
class Follower : public std::enable_shared_from_this<Follower> {
 public:
  Follower(ObserveStream* stream, RecipeHost* host, std::string prefix)
      : stream_(stream), host_(host), prefix_(std::move(prefix)) {}

  // Takes the host's client handles and reads the leader (once the host has its client).
  void Start() ABSL_LOCKS_EXCLUDED(mu_) {
    auto kv = host_->kv();
    auto watch = host_->watch();
    if (!kv.ok() || !watch.ok()) return End(base::MakeError(base::ErrorKind::kStopped));
    {
      absl::MutexLock l(&mu_);
      kv_ = *std::move(kv);
      watch_ = *std::move(watch);
    }
    Look();
  }
  void Look() ABSL_LOCKS_EXCLUDED(mu_) {
    auto self = shared_from_this();
    Kv kv = this->kv();
    kv.GetAsync(prefix_, FirstCreated()).Then([self](absl::StatusOr<GetResponse> r) {
      self->OnLeader(std::move(r));
    });
  }
  // Finishes the stream (at most once; not after Detach).
  void End(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  void OnWriteDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  // The stream is done: no more calls into it.
  void Detach() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void OnLeader(absl::StatusOr<GetResponse> r) ABSL_LOCKS_EXCLUDED(mu_);
  void OnEvents(uint64_t generation, const WatchResponse& w) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues a response; sends it now unless a write is in flight.
  void SendLocked(const ResponseHeader& header, const KeyValue& kv)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Kv kv() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    return *kv_;
  }

  absl::Mutex mu_;
  ObserveStream* stream_ ABSL_GUARDED_BY(mu_);  // null once ended or detached
  RecipeHost* const host_;
  const std::string prefix_;
  std::optional<Kv> kv_ ABSL_GUARDED_BY(mu_);  // set by Start, before Look
  std::optional<WatchClient> watch_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // of the current watch
  std::unique_ptr<Watcher> watcher_ ABSL_GUARDED_BY(mu_);
  bool leader_watch_ ABSL_GUARDED_BY(mu_) = false;  // watching the leader's key (else the prefix)
  std::deque<v3electionpb::LeaderResponse> outbox_ ABSL_GUARDED_BY(mu_);  // front: in flight
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_key_ ABSL_GUARDED_BY(mu_);  // what was sent last, so a re-read does not repeat
  Revision last_mod_revision_ ABSL_GUARDED_BY(mu_) = 0;
};

class ObserveStream final : public grpc::ServerWriteReactor<v3electionpb::LeaderResponse> {
 public:
  ObserveStream(RecipeHost* host, RequestGate* gate) : host_(host), gate_(gate) {}

  // `authorized`: the caller's permission check (auth_gate.h), run once admitted.
  void Begin(const std::string& name, const std::function<absl::Status()>& authorized) {
    if (absl::Status admitted = gate_->AdmitStream(Method::kObserve); !admitted.ok()) {
      Finish(ToGrpc(admitted));
      return;
    }
    if (absl::Status st = authorized(); !st.ok()) {
      gate_->StreamDone(Method::kObserve, st);  // counted as refused; OnDone need not
      // As etcd 3.4 (checked against it, a bad token included): the refusal fails its
      // observer's first read, which closes the stream with nothing sent, status OK.
      Finish(grpc::Status::OK);
      return;
    }
    admitted_ = true;
    follower_ = std::make_shared<Follower>(this, host_, name + "/");
    std::weak_ptr<Follower> weak = follower_;
    auto id = host_->Add([weak] {
      if (auto f = weak.lock()) f->End(base::MakeError(base::ErrorKind::kStopped));
    });
    if (!id.ok()) {
      follower_->End(id.status());
      return;
    }
    id_ = *id;
    host_->WhenStarted([weak] {
      if (auto f = weak.lock()) f->Start();
    });
  }

  void OnWriteDone(bool ok) override { follower_->OnWriteDone(ok); }
  // The caller went away: end with OK, as etcd's Observe does when its context ends.
  void OnCancel() override {
    if (follower_) follower_->End(absl::OkStatus());
  }
  void OnDone() override {
    if (follower_) follower_->Detach();
    if (id_ != 0) host_->Remove(id_);
    if (admitted_) gate_->StreamDone(Method::kObserve, absl::OkStatus());
    delete this;
  }

 private:
  RecipeHost* host_;
  RequestGate* gate_;
  // Set in Begin, before the stream can end.
  bool admitted_ = false;
  uint64_t id_ = 0;
  std::shared_ptr<Follower> follower_;
};

void Follower::OnLeader(absl::StatusOr<GetResponse> r) {
  std::unique_ptr<Watcher> old;
  uint64_t generation = 0;
  std::string key = prefix_;
  WatchOptions wo;
  {
    absl::MutexLock l(&mu_);
    if (stream_ == nullptr) return;
    if (!r.ok()) {
      // As etcd's Observe: the stream ends (OK) when the leader can no longer be followed.
      stream_->Finish(grpc::Status::OK);
      stream_ = nullptr;
      old = std::move(watcher_);
    } else {
      generation = ++generation_;
      old = std::move(watcher_);
      wo.start_revision = r->header.revision + 1;
      if (r->kvs.empty()) {
        leader_watch_ = false;
        wo.prefix = true;
        wo.filter_delete = true;
      } else {
        leader_watch_ = true;
        key = r->kvs[0].key;
        SendLocked(r->header, r->kvs[0]);
      }
    }
  }
  if (old) old->Cancel();
  if (!r.ok()) return;
  auto self = shared_from_this();
  std::optional<WatchClient> watch;
  {
    absl::MutexLock l(&mu_);
    watch = watch_;
  }
  auto watcher = watch->Watch(
      key, wo, [self, generation](const WatchResponse& w) { self->OnEvents(generation, w); });
  if (!watcher.ok()) return End(absl::OkStatus());
  std::unique_ptr<Watcher> drop;
  {
    absl::MutexLock l(&mu_);
    if (stream_ == nullptr || generation != generation_) {
      drop = std::move(*watcher);
    } else {
      watcher_ = std::move(*watcher);
    }
  }
  if (drop) drop->Cancel();
}

void Follower::OnEvents(uint64_t generation, const WatchResponse& w) {
  std::unique_ptr<Watcher> done;
  bool look = false;
  {
    absl::MutexLock l(&mu_);
    if (stream_ == nullptr || generation != generation_) return;
    if (w.canceled) {
      look = true;  // e.g. compacted: read the leader again
    } else if (!leader_watch_) {
      look = !w.events.empty();  // a candidate appeared
    } else {
      for (const Event& e : w.events) {
        if (e.type == EventType::kDelete) {
          look = true;  // the leader resigned or its lease ended: a new election
          break;
        }
        ResponseHeader h = w.header;
        h.revision = e.kv.mod_revision;
        SendLocked(h, e.kv);
      }
    }
    if (look) {
      ++generation_;  // later responses of this watch are ignored
      done = std::move(watcher_);
    }
  }
  if (done) done->Cancel();  // on the watch thread, from its own callback: does not wait
  if (look) Look();
}

void Follower::SendLocked(const ResponseHeader& header, const KeyValue& kv) {
  if (kv.key == last_key_ && kv.mod_revision == last_mod_revision_) return;
  last_key_ = kv.key;
  last_mod_revision_ = kv.mod_revision;
  v3electionpb::LeaderResponse resp;
  ToProto(header, resp.mutable_header());
  ToProto(kv, resp.mutable_kv());
  outbox_.push_back(std::move(resp));
  if (!writing_) WriteNextLocked();
}

void Follower::WriteNextLocked() {
  if (outbox_.empty() || stream_ == nullptr) return;
  writing_ = true;
  stream_->StartWrite(&outbox_.front());
}

void Follower::OnWriteDone(bool ok) {
  std::unique_ptr<Watcher> done;
  {
    absl::MutexLock l(&mu_);
    writing_ = false;
    if (!outbox_.empty()) outbox_.pop_front();
    if (!ok) {
      // The stream broke: end it (OnCancel usually comes too).
      if (stream_ != nullptr) stream_->Finish(grpc::Status::OK);
      stream_ = nullptr;
      done = std::move(watcher_);
    } else {
      WriteNextLocked();
    }
  }
  if (done) done->Cancel();
}

void Follower::End(const absl::Status& status) {
  std::unique_ptr<Watcher> done;
  {
    absl::MutexLock l(&mu_);
    if (stream_ == nullptr) return;
    stream_->Finish(ToGrpc(status));
    stream_ = nullptr;
    done = std::move(watcher_);
  }
  if (done) done->Cancel();
}

void Follower::Detach() {
  std::unique_ptr<Watcher> done;
  {
    absl::MutexLock l(&mu_);
    stream_ = nullptr;
    done = std::move(watcher_);
  }
  if (done) done->Cancel();
}

}  // namespace

grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* ElectionService::Observe(
    grpc::CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req) {
  auto* stream = new ObserveStream(host_, gate_);
  stream->Begin(req->name(),
                [&] { return AuthorizeElectionRead(auth_, CallerOf(*ctx), req->name()); });
  return stream;
}

}  // namespace cairn::api
