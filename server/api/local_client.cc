#include "server/api/local_client.h"

#include <future>
#include <optional>
#include <thread>

#include "absl/time/time.h"

#include "server/api/validate.h"
#include "server/base/errors.h"
#include "server/mvcc/watch_hub.h"

namespace cairn::api {
namespace {

constexpr int kCancelPollMs = 100;

// A one-watcher sink that hands the first event to a waiting thread. The watch hub delivers on
// its own thread; mu_ guards what the waiter reads.
class WaitSink : public mvcc::WatchSink {
 public:
  bool Deliver(int64_t, int64_t, std::vector<mvccpb::Event>& events, bool) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    if (!event_ && !events.empty()) event_ = events.front();
    cv_.SignalAll();
    return true;
  }
  void Compacted(int64_t, int64_t) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    compacted_ = true;
    cv_.SignalAll();
  }
  void Progress(int64_t, int64_t) override {}

  absl::Mutex mu_;
  absl::CondVar cv_;  // signalled when event_ or compacted_ is set
  std::optional<mvccpb::Event> event_ ABSL_GUARDED_BY(mu_);
  bool compacted_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(end.back() + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

absl::StatusOr<etcdserverpb::TxnResponse> LocalClient::Txn(const etcdserverpb::TxnRequest& t) {
  absl::Status st = ValidateTxn(t, server_->config().max_txn_ops);
  if (!st.ok()) return st;
  std::promise<mvcc::ApplyResult> done;
  cairnpb::InternalRequest ir;
  *ir.mutable_txn() = t;
  server_->Propose(std::move(ir), [&](mvcc::ApplyResult r) { done.set_value(std::move(r)); });
  mvcc::ApplyResult r = done.get_future().get();
  if (!r.status.ok()) return r.status;
  server_->FillHeader(r.txn.mutable_header());
  return std::move(r.txn);
}

absl::StatusOr<etcdserverpb::RangeResponse> LocalClient::Range(
    const etcdserverpb::RangeRequest& r) {
  auto resp = server_->kv()->Range(server_->kv()->View(), r);
  if (resp.ok()) server_->FillHeader(resp->mutable_header());
  return resp;
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> LocalClient::Delete(const std::string& key) {
  std::promise<mvcc::ApplyResult> done;
  cairnpb::InternalRequest ir;
  ir.mutable_delete_range()->set_key(key);
  server_->Propose(std::move(ir), [&](mvcc::ApplyResult r) { done.set_value(std::move(r)); });
  mvcc::ApplyResult r = done.get_future().get();
  if (!r.status.ok()) return r.status;
  server_->FillHeader(r.delete_range.mutable_header());
  return std::move(r.delete_range);
}

absl::StatusOr<mvccpb::Event> LocalClient::WaitChange(const std::string& key,
                                                      const std::string& range_end,
                                                      int64_t after_rev,
                                                      const std::function<bool()>& cancelled) {
  WaitSink sink;
  mvcc::WatchSpec spec;
  spec.key = key;
  spec.range_end = range_end;
  spec.start_revision = after_rev + 1;
  mvcc::WatchHub* hub = server_->watch_hub();
  hub->Add(&sink, 1, spec, [](int64_t) {});
  std::optional<mvccpb::Event> ev;
  bool compacted = false;
  {
    absl::MutexLock l(&sink.mu_);
    while (!sink.event_ && !sink.compacted_ && !cancelled()) {
      sink.cv_.WaitWithTimeout(&sink.mu_, absl::Milliseconds(kCancelPollMs));
    }
    ev = sink.event_;
    compacted = sink.compacted_;
  }
  hub->RemoveSink(&sink);
  if (ev) return *ev;
  if (compacted) return base::MakeError(base::ErrorKind::kCompacted);
  return absl::CancelledError("context canceled");
}

absl::Status LocalClient::WaitDeletes(const std::string& prefix, int64_t max_create_rev,
                                      const std::function<bool()>& cancelled) {
  while (true) {
    etcdserverpb::RangeRequest r;
    r.set_key(prefix);
    r.set_range_end(PrefixEnd(prefix));
    r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
    r.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
    r.set_limit(1);
    r.set_max_create_revision(max_create_rev);
    auto resp = Range(r);
    if (!resp.ok()) return resp.status();
    if (resp->kvs_size() == 0) return absl::OkStatus();
    // Wait for the newest older waiter to go; then look again (etcd's waitDelete loop).
    while (true) {
      auto ev = WaitChange(resp->kvs(0).key(), "", resp->header().revision(), cancelled);
      if (!ev.ok()) return ev.status();
      if (ev->type() == mvccpb::Event::DELETE) break;
    }
  }
}

bool RecipeWorkers::Run(std::function<void()> fn) {
  {
    absl::MutexLock l(&mu_);
    if (active_ >= max_active_) return false;
    ++active_;
  }
  std::thread([this, fn = std::move(fn)] {
    fn();
    absl::MutexLock l(&mu_);
    --active_;
    cv_.SignalAll();
  }).detach();
  return true;
}

void RecipeWorkers::Drain() {
  absl::MutexLock l(&mu_);
  while (active_ != 0) cv_.Wait(&mu_);
}

}  // namespace cairn::api
