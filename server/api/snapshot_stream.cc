#include "server/api/snapshot_stream.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "server/api/status.h"
#include "server/base/errors.h"
#include "server/etcdserver/maintenance.h"

namespace cairn::api {
namespace {

std::atomic<int> running_streams{0};

// Takes one of the kMaxSnapshotStreams places; false when all are taken.
bool TakePlace() {
  int n = running_streams.load();
  do {
    if (n >= kMaxSnapshotStreams) return false;
  } while (!running_streams.compare_exchange_weak(n, n + 1));
  return true;
}

class SnapshotStream final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  SnapshotStream(etcdserver::Server* server, RequestGate* gate, const Caller& caller)
      : server_(server), gate_(gate) {
    absl::Status admitted = gate_->AdmitStream(Method::kSnapshot);
    if (!admitted.ok()) {
      Finish(ToGrpc(admitted));
      return;
    }
    // The whole keyspace leaves in a snapshot: root only, as in etcd.
    if (absl::Status allowed = AuthorizeMaintenance(server_->auth(), caller); !allowed.ok()) {
      gate_->StreamDone(Method::kSnapshot, allowed);
      Finish(ToGrpc(allowed));
      return;
    }
    if (!TakePlace()) {
      absl::Status busy = base::MakeError(base::ErrorKind::kTooManyRequests);
      gate_->StreamDone(Method::kSnapshot, busy);
      Finish(ToGrpc(busy));
      return;
    }
    producer_ = std::thread([this] { Produce(); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock l(&mu_);
    writing_ = false;
    write_ok_ = ok;
  }
  void OnCancel() override {
    absl::MutexLock l(&mu_);
    cancelled_ = true;
  }
  void OnDone() override {
    if (producer_.joinable()) producer_.join();
    delete this;
  }

 private:
  void Produce() {
    mvcc::ReadView view = server_->View();
    absl::Status st =
        etcdserver::StreamClientSnapshot(server_->backend(), view, kSnapshotChunkBytes,
                                         [this, &view](std::string_view chunk, uint64_t remaining) {
                                           return Send(view, chunk, remaining);
                                         });
    running_streams.fetch_sub(1);
    gate_->StreamDone(Method::kSnapshot, st);
    Finish(ToGrpc(st));
  }

  bool Send(const mvcc::ReadView& view, std::string_view chunk, uint64_t remaining) {
    {
      absl::MutexLock l(&mu_);
      if (cancelled_) return false;
      writing_ = true;
    }
    msg_.Clear();
    server_->FillHeader(msg_.mutable_header());
    msg_.mutable_header()->set_revision(view.revision);
    msg_.set_remaining_bytes(remaining);
    msg_.set_blob(chunk.data(), chunk.size());
    StartWrite(&msg_);
    absl::MutexLock l(&mu_);
    // A cancelled write still completes (OnWriteDone(false)) before OnDone, so waiting for the
    // write also ends on a cancel, and msg_ is never reused under gRPC.
    mu_.Await(absl::Condition(
        +[](SnapshotStream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return !s->writing_; },
        this));
    return write_ok_ && !cancelled_;
  }

  etcdserver::Server* const server_;
  RequestGate* const gate_;
  std::thread producer_;
  etcdserverpb::SnapshotResponse msg_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = true;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

int SnapshotStreamsRunning() { return running_streams.load(); }

grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* StartSnapshotStream(
    etcdserver::Server* server, RequestGate* gate, const Caller& caller) {
  return new SnapshotStream(server, gate, caller);
}

}  // namespace cairn::api
