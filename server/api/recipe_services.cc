#include "server/api/recipe_services.h"

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/api/status.h"
#include "server/base/errors.h"
#include "server/etcdserver/member_id.h"

namespace cairn::api {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::TxnRequest;

// Admits the call through the gate, then runs `work` on a recipe worker; the RPC finishes with
// its status.
grpc::ServerUnaryReactor* RunBlocking(grpc::CallbackServerContext* ctx, RecipeWorkers* workers,
                                      RequestGate* gate, Method method,
                                      std::function<absl::Status()> work) {
  auto* reactor = ctx->DefaultReactor();
  RequestGate::Done done = [reactor](absl::Status st) { reactor->Finish(ToGrpc(st)); };
  if (!gate->Admit(method, &done)) return reactor;
  if (!workers->Run([done, work = std::move(work)] { done(work()); })) {
    done(base::MakeError(base::ErrorKind::kTooManyRequests));
  }
  return reactor;
}

Compare CreateRevisionIs(const std::string& key, int64_t rev) {
  Compare c;
  c.set_key(key);
  c.set_target(Compare::CREATE);
  c.set_result(Compare::EQUAL);
  c.set_create_revision(rev);
  return c;
}

RangeRequest FirstCreated(const std::string& prefix) {
  RangeRequest r;
  r.set_key(prefix);
  r.set_range_end(PrefixEnd(prefix));
  r.set_sort_target(RangeRequest::CREATE);
  r.set_sort_order(RangeRequest::ASCEND);
  r.set_limit(1);
  return r;
}

const absl::Status kNotLeader = absl::UnknownError("election: not leader");
const absl::Status kNoLeader = absl::UnknownError("election: no leader");

}  // namespace

grpc::ServerUnaryReactor* LockService::Lock(grpc::CallbackServerContext* ctx,
                                            const v3lockpb::LockRequest* req,
                                            v3lockpb::LockResponse* resp) {
  return RunBlocking(ctx, workers_, gate_, Method::kLock, [this, ctx, req, resp]() -> absl::Status {
    auto cancelled = [ctx] { return ctx->IsCancelled(); };
    std::string prefix = req->name() + "/";
    std::string my_key = prefix + etcdserver::IdToHex(static_cast<uint64_t>(req->lease()));
    // Concurrency Mutex.tryAcquire: join the queue (or find our key), and read the holder.
    TxnRequest t;
    *t.add_compare() = CreateRevisionIs(my_key, 0);
    auto* put = t.add_success()->mutable_request_put();
    put->set_key(my_key);
    put->set_lease(req->lease());
    *t.add_success()->mutable_request_range() = FirstCreated(prefix);
    t.add_failure()->mutable_request_range()->set_key(my_key);
    *t.add_failure()->mutable_request_range() = FirstCreated(prefix);
    auto tr = client_.Txn(t);
    if (!tr.ok()) return tr.status();
    int64_t my_rev = tr->succeeded() ? tr->header().revision()
                                     : tr->responses(0).response_range().kvs(0).create_revision();
    const auto& owner = tr->responses(1).response_range().kvs();
    *resp->mutable_header() = tr->header();
    if (!owner.empty() && owner[0].create_revision() != my_rev) {
      absl::Status w = client_.WaitDeletes(prefix, my_rev - 1, cancelled);
      if (!w.ok()) {
        (void)client_.Delete(my_key);  // give up our place in the queue
        return w;
      }
      // Our key (hence our lease) must still be alive now that we hold the lock.
      RangeRequest get;
      get.set_key(my_key);
      auto g = client_.Range(get);
      if (!g.ok()) return g.status();
      if (g->kvs_size() == 0 || g->kvs(0).create_revision() != my_rev ||
          !client_.server()->lessor()->Get(req->lease()).has_value()) {
        return base::MakeError(base::ErrorKind::kLeaseNotFound);
      }
      *resp->mutable_header() = g->header();
    }
    resp->set_key(my_key);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* LockService::Unlock(grpc::CallbackServerContext* ctx,
                                              const v3lockpb::UnlockRequest* req,
                                              v3lockpb::UnlockResponse* resp) {
  return RunBlocking(ctx, workers_, gate_, Method::kUnlock, [this, req, resp]() -> absl::Status {
    auto d = client_.Delete(req->key());
    if (!d.ok()) return d.status();
    *resp->mutable_header() = d->header();
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ElectionService::Campaign(grpc::CallbackServerContext* ctx,
                                                    const v3electionpb::CampaignRequest* req,
                                                    v3electionpb::CampaignResponse* resp) {
  return RunBlocking(
      ctx, workers_, gate_, Method::kCampaign, [this, ctx, req, resp]() -> absl::Status {
        auto cancelled = [ctx] { return ctx->IsCancelled(); };
        std::string prefix = req->name() + "/";
        std::string key = prefix + etcdserver::IdToHex(static_cast<uint64_t>(req->lease()));
        TxnRequest t;
        *t.add_compare() = CreateRevisionIs(key, 0);
        auto* put = t.add_success()->mutable_request_put();
        put->set_key(key);
        put->set_value(req->value());
        put->set_lease(req->lease());
        t.add_failure()->mutable_request_range()->set_key(key);
        auto tr = client_.Txn(t);
        if (!tr.ok()) return tr.status();
        int64_t rev = tr->header().revision();
        if (!tr->succeeded()) {
          const auto& kv = tr->responses(0).response_range().kvs(0);
          rev = kv.create_revision();
          if (kv.value() != req->value()) {
            // Already campaigning with another value: proclaim the new one (as Go's Campaign).
            TxnRequest p;
            *p.add_compare() = CreateRevisionIs(key, rev);
            auto* pp = p.add_success()->mutable_request_put();
            pp->set_key(key);
            pp->set_value(req->value());
            pp->set_lease(req->lease());
            auto pr = client_.Txn(p);
            if (!pr.ok()) return pr.status();
            if (!pr->succeeded()) return kNotLeader;
          }
        }
        absl::Status w = client_.WaitDeletes(prefix, rev - 1, cancelled);
        if (!w.ok()) {
          if (cancelled()) {
            TxnRequest resign;
            *resign.add_compare() = CreateRevisionIs(key, rev);
            resign.add_success()->mutable_request_delete_range()->set_key(key);
            (void)client_.Txn(resign);
          }
          return w;
        }
        *resp->mutable_header() = tr->header();
        auto* leader = resp->mutable_leader();
        leader->set_name(req->name());
        leader->set_key(key);
        leader->set_rev(rev);
        leader->set_lease(req->lease());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ElectionService::Proclaim(grpc::CallbackServerContext* ctx,
                                                    const v3electionpb::ProclaimRequest* req,
                                                    v3electionpb::ProclaimResponse* resp) {
  return RunBlocking(ctx, workers_, gate_, Method::kProclaim, [this, req, resp]() -> absl::Status {
    if (!req->has_leader()) return absl::UnknownError("\"leader\" field must be provided");
    const auto& l = req->leader();
    TxnRequest t;
    *t.add_compare() = CreateRevisionIs(l.key(), l.rev());
    auto* put = t.add_success()->mutable_request_put();
    put->set_key(l.key());
    put->set_value(req->value());
    put->set_lease(l.lease());
    auto tr = client_.Txn(t);
    if (!tr.ok()) return tr.status();
    if (!tr->succeeded()) return kNotLeader;
    *resp->mutable_header() = tr->header();
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ElectionService::Leader(grpc::CallbackServerContext* ctx,
                                                  const v3electionpb::LeaderRequest* req,
                                                  v3electionpb::LeaderResponse* resp) {
  return RunBlocking(ctx, workers_, gate_, Method::kLeader, [this, req, resp]() -> absl::Status {
    auto r = client_.Range(FirstCreated(req->name() + "/"));
    if (!r.ok()) return r.status();
    if (r->kvs_size() == 0) return kNoLeader;
    *resp->mutable_header() = r->header();
    *resp->mutable_kv() = r->kvs(0);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ElectionService::Resign(grpc::CallbackServerContext* ctx,
                                                  const v3electionpb::ResignRequest* req,
                                                  v3electionpb::ResignResponse* resp) {
  return RunBlocking(ctx, workers_, gate_, Method::kResign, [this, req, resp]() -> absl::Status {
    if (!req->has_leader()) return absl::UnknownError("\"leader\" field must be provided");
    TxnRequest t;
    *t.add_compare() = CreateRevisionIs(req->leader().key(), req->leader().rev());
    t.add_success()->mutable_request_delete_range()->set_key(req->leader().key());
    auto tr = client_.Txn(t);
    if (!tr.ok()) return tr.status();
    *resp->mutable_header() = tr->header();
    return absl::OkStatus();
  });
}

namespace {

// Observe: streams the leader's key-value each time the leadership or the leader's value changes,
// until the client goes away. The worker thread writes one response at a time.
class ObserveStream final : public grpc::ServerWriteReactor<v3electionpb::LeaderResponse> {
 public:
  ObserveStream(grpc::CallbackServerContext* ctx, LocalClient* client, std::string name,
                RequestGate* gate)
      : ctx_(ctx), client_(client), name_(std::move(name)), gate_(gate) {}

  // The gate admitted the stream: its end is counted (OnDone).
  void Admitted() { admitted_ = true; }
  // The gate refused it: it ends at once, without a worker.
  void Refuse(const grpc::Status& status) {
    WorkerExited();
    Finish(status);
  }

  void Run() {
    auto cancelled = [this] {
      absl::MutexLock l(&mu_);
      return done_ || ctx_->IsCancelled();
    };
    std::string prefix = name_ + "/";
    while (!cancelled()) {
      auto r = client_->Range(FirstCreated(prefix));
      if (!r.ok()) break;
      if (r->kvs_size() == 0) {
        // No leader: wait for any key under the prefix to appear.
        if (!client_->WaitChange(prefix, PrefixEnd(prefix), r->header().revision(), cancelled)
                 .ok()) {
          break;
        }
        continue;
      }
      mvccpb::KeyValue leader = r->kvs(0);
      if (!Send(r->header(), leader)) break;
      // Follow the leader key: new values are sent, a delete means a new election.
      int64_t rev = r->header().revision();
      while (true) {
        auto ev = client_->WaitChange(leader.key(), "", rev, cancelled);
        if (!ev.ok()) return Close();
        if (ev->type() == mvccpb::Event::DELETE) break;
        rev = ev->kv().mod_revision();
        etcdserverpb::ResponseHeader h = r->header();
        h.set_revision(rev);
        if (!Send(h, ev->kv())) return Close();
      }
    }
    Close();
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    writing_ = false;
    if (!ok) done_ = true;
    cv_.SignalAll();
  }
  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    done_ = true;
    cv_.SignalAll();
  }
  void OnDone() override ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock l(&mu_);
      while (!worker_exited_) cv_.Wait(&mu_);
    }
    if (admitted_) gate_->StreamDone(Method::kObserve, absl::OkStatus());
    delete this;
  }
  void WorkerExited() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    worker_exited_ = true;
    cv_.SignalAll();
  }

 private:
  bool Send(const etcdserverpb::ResponseHeader& h, const mvccpb::KeyValue& kv)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    if (done_) return false;
    *resp_.mutable_header() = h;
    *resp_.mutable_kv() = kv;
    writing_ = true;
    StartWrite(&resp_);
    while (writing_) cv_.Wait(&mu_);
    return !done_;
  }

  void Close() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    if (closed_) return;
    closed_ = true;
    Finish(grpc::Status::OK);
  }

  grpc::CallbackServerContext* ctx_;
  LocalClient* client_;
  std::string name_;
  v3electionpb::LeaderResponse resp_;
  RequestGate* gate_;
  bool admitted_ = false;  // set before the worker starts
  // The worker thread and gRPC's callbacks meet here.
  absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on every change below
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool worker_exited_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* ElectionService::Observe(
    grpc::CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req) {
  auto* stream = new ObserveStream(ctx, &client_, req->name(), gate_);
  if (absl::Status admitted = gate_->AdmitStream(Method::kObserve); !admitted.ok()) {
    stream->Refuse(ToGrpc(admitted));
    return stream;
  }
  stream->Admitted();
  if (!workers_->Run([stream] {
        stream->Run();
        stream->WorkerExited();
      })) {
    stream->WorkerExited();
    stream->Finish(ToGrpc(base::MakeError(base::ErrorKind::kTooManyRequests)));
  }
  return stream;
}

}  // namespace cairn::api
