// cairn-bench-noop: an etcd v3 gRPC server that does nothing and answers every call at once.
// Driving it with cairn-bench measures the upper bound that the client and gRPC allow on this
// machine. It stores nothing: Range returns no keys, Put succeeds, Watch confirms creates and
// cancels but never sends events, keepalives are echoed, locks and campaigns are granted at once.
//
//   cairn-bench-noop [--listen 127.0.0.1:0]
// Prints "listening on HOST:PORT" once serving; exits on SIGINT or SIGTERM.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace cairn::bench {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using grpc::Status;

ServerUnaryReactor* Answer(CallbackServerContext* ctx) {
  ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(Status::OK);
  return r;
}

// A bidi stream that answers each request with at most one response, in order.
template <typename Req, typename Resp>
class AnswerEachReactor : public grpc::ServerBidiReactor<Req, Resp> {
 public:
  // Fills the response to a request; returns false to send none.
  using Answerer = std::function<bool(const Req&, Resp*)>;

  explicit AnswerEachReactor(Answerer answer) : answer_(std::move(answer)) {
    this->StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      this->Finish(Status::OK);
      return;
    }
    resp_.Clear();
    if (answer_(req_, &resp_)) {
      this->StartWrite(&resp_);
    } else {
      this->StartRead(&req_);
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    this->StartRead(&req_);
  }

  void OnDone() override { delete this; }

 private:
  Answerer answer_;
  Req req_;
  Resp resp_;
};

class NoopKv final : public etcdserverpb::KV::CallbackService {
  ServerUnaryReactor* Range(CallbackServerContext* c, const etcdserverpb::RangeRequest*,
                            etcdserverpb::RangeResponse*) override {
    return Answer(c);
  }
  ServerUnaryReactor* Put(CallbackServerContext* c, const etcdserverpb::PutRequest*,
                          etcdserverpb::PutResponse*) override {
    return Answer(c);
  }
  ServerUnaryReactor* DeleteRange(CallbackServerContext* c, const etcdserverpb::DeleteRangeRequest*,
                                  etcdserverpb::DeleteRangeResponse*) override {
    return Answer(c);
  }
  ServerUnaryReactor* Txn(CallbackServerContext* c, const etcdserverpb::TxnRequest*,
                          etcdserverpb::TxnResponse* resp) override {
    resp->set_succeeded(true);
    return Answer(c);
  }
  ServerUnaryReactor* Compact(CallbackServerContext* c, const etcdserverpb::CompactionRequest*,
                              etcdserverpb::CompactionResponse*) override {
    return Answer(c);
  }
};

class NoopWatch final : public etcdserverpb::Watch::CallbackService {
  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      CallbackServerContext*) override {
    int64_t next_id = 0;
    return new AnswerEachReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>(
        [next_id](const etcdserverpb::WatchRequest& req,
                  etcdserverpb::WatchResponse* resp) mutable {
          if (req.has_create_request()) {
            resp->set_created(true);
            resp->set_watch_id(next_id++);
            return true;
          }
          if (req.has_cancel_request()) {
            resp->set_canceled(true);
            resp->set_watch_id(req.cancel_request().watch_id());
            return true;
          }
          resp->set_watch_id(-1);  // progress notification
          return true;
        });
  }
};

class NoopLease final : public etcdserverpb::Lease::CallbackService {
 public:
  ServerUnaryReactor* LeaseGrant(CallbackServerContext* c,
                                 const etcdserverpb::LeaseGrantRequest* req,
                                 etcdserverpb::LeaseGrantResponse* resp) override {
    resp->set_id(req->id() != 0 ? req->id() : next_id_.fetch_add(1) + 1);
    resp->set_ttl(req->ttl());
    return Answer(c);
  }
  ServerUnaryReactor* LeaseRevoke(CallbackServerContext* c, const etcdserverpb::LeaseRevokeRequest*,
                                  etcdserverpb::LeaseRevokeResponse*) override {
    return Answer(c);
  }
  ServerUnaryReactor* LeaseTimeToLive(CallbackServerContext* c,
                                      const etcdserverpb::LeaseTimeToLiveRequest* req,
                                      etcdserverpb::LeaseTimeToLiveResponse* resp) override {
    resp->set_id(req->id());
    return Answer(c);
  }
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(CallbackServerContext*) override {
    return new AnswerEachReactor<etcdserverpb::LeaseKeepAliveRequest,
                                 etcdserverpb::LeaseKeepAliveResponse>(
        [](const etcdserverpb::LeaseKeepAliveRequest& req,
           etcdserverpb::LeaseKeepAliveResponse* resp) {
          resp->set_id(req.id());
          resp->set_ttl(60);
          return true;
        });
  }

 private:
  std::atomic<int64_t> next_id_{0};
};

class NoopMaintenance final : public etcdserverpb::Maintenance::CallbackService {
  ServerUnaryReactor* Status(CallbackServerContext* c, const etcdserverpb::StatusRequest*,
                             etcdserverpb::StatusResponse* resp) override {
    resp->set_version("3.4.0");
    return Answer(c);
  }
};

class NoopLock final : public v3lockpb::Lock::CallbackService {
  ServerUnaryReactor* Lock(CallbackServerContext* c, const v3lockpb::LockRequest* req,
                           v3lockpb::LockResponse* resp) override {
    resp->set_key(req->name() + "/" + std::to_string(req->lease()));
    return Answer(c);
  }
  ServerUnaryReactor* Unlock(CallbackServerContext* c, const v3lockpb::UnlockRequest*,
                             v3lockpb::UnlockResponse*) override {
    return Answer(c);
  }
};

class NoopElection final : public v3electionpb::Election::CallbackService {
  ServerUnaryReactor* Campaign(CallbackServerContext* c, const v3electionpb::CampaignRequest* req,
                               v3electionpb::CampaignResponse* resp) override {
    resp->mutable_leader()->set_name(req->name());
    resp->mutable_leader()->set_key(req->name() + "/" + std::to_string(req->lease()));
    resp->mutable_leader()->set_lease(req->lease());
    return Answer(c);
  }
  ServerUnaryReactor* Resign(CallbackServerContext* c, const v3electionpb::ResignRequest*,
                             v3electionpb::ResignResponse*) override {
    return Answer(c);
  }
};

int Main(int argc, char** argv) {
  // As in cairn-bench: no lock-order cycle detection in the measuring instruments.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string listen = "127.0.0.1:0";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (a.rfind("--listen=", 0) == 0) {
      listen = a.substr(std::strlen("--listen="));
    } else {
      std::fprintf(stderr, "usage: cairn-bench-noop [--listen HOST:PORT]\n");
      return 2;
    }
  }
  // Block the stop signals before gRPC starts its threads, then wait for them here.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  NoopKv kv;
  NoopWatch watch;
  NoopLease lease;
  NoopMaintenance maintenance;
  NoopLock lock;
  NoopElection election;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(-1);
  builder.RegisterService(&kv);
  builder.RegisterService(&watch);
  builder.RegisterService(&lease);
  builder.RegisterService(&maintenance);
  builder.RegisterService(&lock);
  builder.RegisterService(&election);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "cairn-bench-noop: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::string host = listen.substr(0, listen.rfind(':'));
  std::printf("listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
