#include "server/api/lease_service.h"

#include <deque>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "server/api/reactors.h"
#include "server/api/status.h"
#include "server/base/errors.h"

namespace cairn::api {
namespace {

using etcdserverpb::LeaseKeepAliveRequest;
using etcdserverpb::LeaseKeepAliveResponse;

// One keepalive stream: each request renews and is answered in order. One renewal is in flight
// at a time (the next read starts once it is answered; on a follower it is forwarded to the
// leader without blocking this thread). At most kMaxQueued replies wait to be written; past that
// the stream stops reading until the client catches up. gRPC calls OnReadDone and OnWriteDone on
// its threads, and a forwarded renewal answers on a transport thread, possibly at once: mu_
// guards the state. The stream ends (Finish) only when no renewal is in flight, so `this` outlives
// every renewal callback.
class KeepAliveStream final
    : public grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
 public:
  explicit KeepAliveStream(Handlers* handlers) : handlers_(handlers) { StartRead(&req_); }

  void OnReadDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    if (!ok) {
      absl::MutexLock l(&mu_);
      reading_done_ = true;
      if (!writing_) FinishLocked();
      return;
    }
    {
      absl::MutexLock l(&mu_);
      renewing_ = true;
    }
    auto resp = std::make_shared<LeaseKeepAliveResponse>();
    handlers_->LeaseKeepAlive(req_, resp.get(), [this, resp](absl::Status renewed) {
      OnRenewed(renewed, std::move(*resp));
    });
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    out_.pop_front();
    writing_ = false;
    if (!ok) {
      FinishLocked();
      return;
    }
    if (!out_.empty()) {
      writing_ = true;
      StartWrite(&out_.front());
    } else if (reading_done_) {
      FinishLocked();
      return;
    }
    if (read_paused_ && out_.size() < kMaxQueued) {
      read_paused_ = false;
      StartRead(&req_);
    }
  }

  void OnDone() override { delete this; }

 private:
  static constexpr size_t kMaxQueued = 16;

  void OnRenewed(const absl::Status& renewed, LeaseKeepAliveResponse resp)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    renewing_ = false;
    if (finish_pending_) {  // the stream broke while the renewal was in flight
      FinishLocked();
      return;
    }
    if (!renewed.ok()) {
      // No leader within the bound, stopped...: end the stream with the error (etcd does too);
      // the client opens a new one.
      error_ = ToGrpc(renewed);
      reading_done_ = true;
      if (!writing_) FinishLocked();
      return;
    }
    out_.push_back(std::move(resp));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
    if (out_.size() < kMaxQueued) {
      StartRead(&req_);
    } else {
      read_paused_ = true;
    }
  }

  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (renewing_) {
      finish_pending_ = true;  // OnRenewed finishes: the callback still needs `this`
      return;
    }
    if (finished_) return;
    finished_ = true;
    Finish(error_);
  }

  Handlers* handlers_;
  LeaseKeepAliveRequest req_;
  absl::Mutex mu_;
  std::deque<LeaseKeepAliveResponse> out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool renewing_ ABSL_GUARDED_BY(mu_) = false;                  // a renewal is in flight
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;            // finish once it is answered
  grpc::Status error_ ABSL_GUARDED_BY(mu_) = grpc::Status::OK;  // the status the stream ends with
};

}  // namespace

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* ctx,
                                                   const etcdserverpb::LeaseGrantRequest* req,
                                                   etcdserverpb::LeaseGrantResponse* resp) {
  return Serve(ctx, handlers_, &Handlers::LeaseGrant, req, resp);
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::LeaseRevokeRequest* req,
                                                    etcdserverpb::LeaseRevokeResponse* resp) {
  return Serve(ctx, handlers_, &Handlers::LeaseRevoke, req, resp);
}

grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext*) {
  return new KeepAliveStream(handlers_);
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(
    grpc::CallbackServerContext* ctx, const etcdserverpb::LeaseTimeToLiveRequest* req,
    etcdserverpb::LeaseTimeToLiveResponse* resp) {
  return Serve(ctx, handlers_, &Handlers::LeaseTimeToLive, req, resp);
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::LeaseLeasesRequest* req,
                                                    etcdserverpb::LeaseLeasesResponse* resp) {
  return Serve(ctx, handlers_, &Handlers::LeaseLeases, req, resp);
}

}  // namespace cairn::api
