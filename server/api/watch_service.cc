#include "server/api/watch_service.h"

#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/api/reactors.h"
#include "server/api/watch_queue.h"
#include "server/base/logging.h"

namespace cairn::api {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// Event bytes queued on one stream before its watchers fall behind into catch-up.
constexpr size_t kMaxQueuedBytes = 4 << 20;

class WatchStream final : public grpc::ServerBidiReactor<WatchRequest, WatchResponse>,
                          public mvcc::WatchSink {
 public:
  WatchStream(etcdserver::Server* server, RequestGate* gate, Caller caller)
      : server_(server), gate_(gate), hub_(server->watch_hub()), caller_(std::move(caller)) {
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // half-closed (or gone): keep delivering until OnCancel / OnDone
    Handle(req_);
    req_.Clear();
    StartRead(&req_);
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    bool kick = false;
    {
      absl::MutexLock l(&mu_);
      queue_.PopFront();
      kick = event_full_ && queue_.bytes() < kMaxQueuedBytes / 2;
      if (kick) event_full_ = false;
      if (!ok) {
        FinishLocked();
      } else if (!queue_.empty() && !finished_) {
        StartNextWriteLocked();
      } else if (closing_ && queue_.empty()) {
        FinishLocked();
      }
    }
    if (kick) hub_->Kick();
  }

  void OnCancel() override { Close(); }

  void OnDone() override {
    hub_->RemoveSink(this);
    gate_->StreamDone(Method::kWatch, absl::OkStatus());
    delete this;
  }

  // ---- mvcc::WatchSink (called under the hub lock) ----
  bool Deliver(int64_t watch_id, int64_t revision, const mvcc::EventView& events,
               bool fragment) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    if (finished_ || closing_) return false;
    if (queue_.bytes() >= kMaxQueuedBytes) {
      event_full_ = true;
      return false;
    }
    const size_t limit = static_cast<size_t>(server_->config().max_request_bytes);
    WatchResponse resp = Header(revision);
    resp.set_watch_id(watch_id);
    size_t bytes = 0;
    bool fragmented = false;
    for (size_t i = 0; i < events.size(); ++i) {
      mvccpb::Event ev;  // the one copy of a shared event: into this stream's response
      events.CopyTo(i, &ev);
      size_t ev_bytes = ev.ByteSizeLong();
      // etcd's fragment option: split a response larger than the request limit.
      if (fragment && bytes > 0 && bytes + ev_bytes > limit) {
        resp.set_fragment(true);
        QueueLocked(std::move(resp), /*start=*/false);
        resp = Header(revision);
        resp.set_watch_id(watch_id);
        bytes = 0;
        fragmented = true;
      }
      *resp.add_events() = std::move(ev);
      bytes += ev_bytes;
    }
    // A backlog behind the write in flight: join the watcher's queued response (watch_queue.h).
    if (fragmented) {
      QueueLocked(std::move(resp), /*start=*/false);
    } else if (!queue_.Merge(watch_id, resp, limit)) {
      QueueLocked(std::move(resp), /*start=*/false, watch_id);
    }
    return true;
  }

  // The hub has delivered one revision to every watcher of this stream it reaches: write them
  // as one batch (all but the last with the buffer hint, so one flush).
  void Flush() override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    if (!queue_.front_in_flight() && !finished_ && !queue_.empty()) StartNextWriteLocked();
  }

  void Compacted(int64_t watch_id, int64_t compact_revision) override ABSL_LOCKS_EXCLUDED(mu_) {
    WatchResponse resp = Header(0);  // etcd leaves the header revision unset here
    resp.set_watch_id(watch_id);
    resp.set_canceled(true);
    resp.set_compact_revision(compact_revision);
    absl::MutexLock l(&mu_);
    ids_.erase(watch_id);
    QueueLocked(std::move(resp));
  }

  void Progress(int64_t watch_id, int64_t revision) override ABSL_LOCKS_EXCLUDED(mu_) {
    WatchResponse resp = Header(revision);
    resp.set_watch_id(watch_id);
    absl::MutexLock l(&mu_);
    QueueLocked(std::move(resp));
  }

 private:
  WatchResponse Header(int64_t revision) const {
    WatchResponse resp;
    resp.mutable_header()->set_revision(revision);
    server_->FillHeader(resp.mutable_header());
    return resp;
  }

  // Queues a response; `start`: write it now if no write is in flight (events wait for Flush).
  // `events_of`: the watch id when `resp` is whole revisions' events of that watcher.
  void QueueLocked(WatchResponse resp, bool start = true,
                   int64_t events_of = WatchResponseQueue::kNotEvents)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    queue_.Push(std::move(resp), events_of);
    if (start && !queue_.front_in_flight()) StartNextWriteLocked();
  }

  // Writes the queue's front. A response with more queued behind it is written with gRPC's
  // buffer hint: the transport may hold it and send it with the ones that follow instead of
  // flushing a frame per response (one put seen by N watchers of a stream is N responses). The
  // queue's last response is written without the hint, so nothing waits for a later event.
  void StartNextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    grpc::WriteOptions options;
    if (queue_.size() > 1) options.set_buffer_hint();
    StartWrite(&queue_.StartFront(), options);
  }

  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(grpc::Status::OK);
  }

  void Close() ABSL_LOCKS_EXCLUDED(mu_) {
    hub_->RemoveSink(this);
    absl::MutexLock l(&mu_);
    closing_ = true;
    if (!queue_.front_in_flight()) FinishLocked();
  }

  void Handle(const WatchRequest& req) ABSL_LOCKS_EXCLUDED(mu_) {
    switch (req.request_union_case()) {
      case WatchRequest::kCreateRequest:
        Create(req.create_request());
        break;
      case WatchRequest::kCancelRequest: {
        int64_t id = req.cancel_request().watch_id();
        hub_->Cancel(this, id, [&](int64_t rev) {
          WatchResponse resp = Header(rev);
          resp.set_watch_id(id);
          resp.set_canceled(true);
          absl::MutexLock l(&mu_);
          ids_.erase(id);
          QueueLocked(std::move(resp));
        });
        break;
      }
      case WatchRequest::kProgressRequest:
        hub_->RequestProgress(this);
        break;
      default:
        break;
    }
  }

  void Create(const etcdserverpb::WatchCreateRequest& c) ABSL_LOCKS_EXCLUDED(mu_) {
    mvcc::WatchSpec spec;
    spec.key = c.key();
    spec.range_end = c.range_end();
    spec.start_revision = c.start_revision() < 0 ? 1 : c.start_revision();
    spec.prev_kv = c.prev_kv();
    spec.progress_notify = c.progress_notify();
    spec.fragment = c.fragment();
    for (int f : c.filters()) {
      if (f == etcdserverpb::WatchCreateRequest::NOPUT) spec.no_put = true;
      if (f == etcdserverpb::WatchCreateRequest::NODELETE) spec.no_delete = true;
    }
    std::string reason;
    bool from_key = spec.range_end.size() == 1 && spec.range_end[0] == '\0';
    if (!spec.range_end.empty() && !from_key && spec.key >= spec.range_end) {
      reason = "mvcc: watcher range is empty";
    }
    if (reason.empty()) {
      // etcd 3.4 checks read permission at create only (a later revoke leaves the watcher be).
      absl::Status allowed = AuthorizeWatch(server_->auth(), caller_, spec.key, spec.range_end);
      if (!allowed.ok()) reason = GoErrorString(allowed);
    }
    int64_t id = c.watch_id();
    {
      absl::MutexLock l(&mu_);
      if (reason.empty() && id != 0 && ids_.count(id)) {
        reason = "mvcc: duplicate watch ID provided on the WatchStream";
      }
      if (reason.empty()) {
        if (id == 0) {
          while (ids_.count(next_id_)) ++next_id_;
          id = next_id_++;
        }
        ids_.insert(id);
      }
    }
    if (!reason.empty()) {
      WatchResponse resp = Header(hub_->notified_revision());
      resp.set_watch_id(-1);
      resp.set_created(true);
      resp.set_canceled(true);
      resp.set_cancel_reason(reason);
      absl::MutexLock l(&mu_);
      QueueLocked(std::move(resp));
      return;
    }
    hub_->Add(this, id, spec, [&](int64_t rev) {
      WatchResponse resp = Header(rev);
      resp.set_watch_id(id);
      resp.set_created(true);
      absl::MutexLock l(&mu_);
      QueueLocked(std::move(resp));
    });
  }

  etcdserver::Server* server_;
  RequestGate* gate_;
  mvcc::WatchHub* hub_;
  const Caller caller_;  // the stream's identity, for the permission check of each create
  WatchRequest req_;

  // gRPC's callbacks, the hub's delivery and the reader all touch the queue and the ids.
  absl::Mutex mu_;
  WatchResponseQueue queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool event_full_ ABSL_GUARDED_BY(mu_) = false;
  std::set<int64_t> ids_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::ServerBidiReactor<WatchRequest, WatchResponse>* WatchService::Watch(
    grpc::CallbackServerContext* ctx) {
  if (absl::Status admitted = gate_->AdmitStream(Method::kWatch); !admitted.ok()) {
    return new RefusedStream<WatchRequest, WatchResponse>(ToGrpc(admitted));
  }
  return new WatchStream(server_, gate_, CallerOf(*ctx));
}

}  // namespace cairn::api
