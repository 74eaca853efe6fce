// LocalClient: blocking KV calls against this member, for the server-side recipe services
// (v3lock, v3election), which follow the Go client's concurrency package step by step.
// Call only from recipe worker threads, never from the applier or a gRPC callback thread.
// Thread-safe.
#pragma once

#include <atomic>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/etcdserver/server.h"

namespace cairn::api {

class LocalClient {
 public:
  explicit LocalClient(etcdserver::Server* server) : server_(server) {}

  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& t);
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& r);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> Delete(const std::string& key);

  // Blocks until a key of [key, range_end) (etcd range semantics; empty = `key` only) changes
  // at a revision > after_rev, or `cancelled()` turns true (checked every kCancelPollMs).
  // Returns the first such event, or Cancelled.
  absl::StatusOr<mvccpb::Event> WaitChange(const std::string& key, const std::string& range_end,
                                           int64_t after_rev,
                                           const std::function<bool()>& cancelled);

  // etcd's waitDeletes: waits until no key under `prefix` has create revision <= max_create_rev.
  absl::Status WaitDeletes(const std::string& prefix, int64_t max_create_rev,
                           const std::function<bool()>& cancelled);

  etcdserver::Server* server() { return server_; }

 private:
  etcdserver::Server* server_;
};

// The prefix range end of etcd (key + 1 at the last byte below 0xff), "\0" if none.
std::string PrefixEnd(const std::string& prefix);

// Runs blocking recipe calls on their own threads, at most `max_active` at once; Drain() waits
// for all of them (they end promptly once their RPC is cancelled). Thread-safe.
class RecipeWorkers {
 public:
  explicit RecipeWorkers(size_t max_active) : max_active_(max_active) {}
  // False (and `fn` not run) when max_active calls are already running.
  bool Run(std::function<void()> fn) ABSL_LOCKS_EXCLUDED(mu_);
  void Drain() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const size_t max_active_;
  absl::Mutex mu_;
  absl::CondVar cv_;  // signalled when active_ drops
  size_t active_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cairn::api
