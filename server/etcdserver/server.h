// Server: one cairn member. Owns the backend and the KV store, and the write path:
//
//   Propose(request) -> bounded proposal queue -> applier thread:
//     take a batch of proposals, give each the next log index, apply each in order (one RocksDB
//     batch per entry, applied index included), ONE fsync for the whole batch (group commit),
//     publish the new read view, then complete every proposal of the batch.
//
// This is the shape of the Raft apply path (ARCHITECTURE.md "How a write flows"): with Raft, the
// queue becomes RawNode.Propose and the batch becomes Ready.committed_entries; the durability
// point moves to the WAL. A single member is still the degenerate one-voter cluster.
//
// Thread contract: Propose(), View(), accessors are thread-safe. Completion callbacks run on the
// applier thread and must not block. Stop() drains: every accepted proposal completes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "cairnpb/internal.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/lease/lessor.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/watch_hub.h"
#include "server/storage/backend.h"

namespace cairn::etcdserver {

struct ServerConfig {
  std::string name = "default";
  std::string data_dir;  // default: "<name>.cairn"
  std::vector<std::string> advertise_client_urls;
  std::vector<std::string> initial_advertise_peer_urls{"http://localhost:2380"};
  std::string initial_cluster_token = "etcd-cluster";
  // Limits (docs/limits.md).
  int64_t max_request_bytes = 1572864;  // etcd's --max-request-bytes default, 1.5 MiB
  int max_txn_ops = 128;                // etcd's --max-txn-ops default
  // Proposals accepted but not yet applied; beyond it writes fail with "too many requests".
  size_t max_pending_proposals = 5000;
  // Entries applied per fsync at most (bounds the latency of one group commit).
  size_t max_batch_entries = 1024;
  // etcd's --experimental-watch-progress-notify-interval (10m); <= 0 disables.
  int64_t watch_progress_notify_interval_ms = 10 * 60 * 1000;
  // Raft timing (etcd's --heartbeat-interval, --election-timeout); they set the minimum lease TTL
  // as etcd does: ceil(1.5 election timeouts).
  int64_t heartbeat_interval_ms = 100;
  int64_t election_timeout_ms = 1000;
  // Remaining-TTL checkpoints (etcd's --experimental-lease-checkpoint-interval); <= 0 disables.
  int64_t lease_checkpoint_interval_ms = 5 * 60 * 1000;
};

class Server {
 public:
  using Done = std::function<void(mvcc::ApplyResult)>;

  static absl::StatusOr<std::unique_ptr<Server>> Open(const ServerConfig& config);
  ~Server();

  // Queues a write. `done` runs on the applier thread once the entry is durable and applied (or
  // with an error status: request too large, too many requests, server stopped).
  void Propose(cairnpb::InternalRequest request, Done done);

  mvcc::KvStore* kv() { return kv_.get(); }
  mvcc::WatchHub* watch_hub() { return watch_hub_.get(); }
  lease::Lessor* lessor() { return lessor_.get(); }

  // LeaseGrant: validates and adjusts the TTL as etcd does, picks an ID when `id` is 0, proposes.
  void GrantLease(int64_t id, int64_t ttl_seconds, Done done);
  // KeepAlive: the granted TTL, or kLeaseNotFound.
  absl::StatusOr<int64_t> RenewLease(int64_t id);
  storage::Backend* backend() { return backend_.get(); }
  const ServerConfig& config() const { return config_; }
  uint64_t cluster_id() const { return cluster_id_; }
  uint64_t member_id() const { return member_id_; }
  uint64_t term() const { return term_; }
  // Fills cluster_id, member_id and raft_term; revision is the caller's.
  void FillHeader(etcdserverpb::ResponseHeader* header) const;

  // Completes every accepted proposal, then stops the applier. Idempotent.
  void Stop();

  // Write-path counters: entries applied and fsyncs made (entries per fsync = group commit).
  struct Stats {
    uint64_t entries = 0;
    uint64_t fsyncs = 0;
  };
  Stats stats() const { return {entries_.load(), fsyncs_.load()}; }

 private:
  explicit Server(const ServerConfig& config) : config_(config) {}
  void ApplierLoop();
  void LeaseLoop();

  struct Proposal {
    cairnpb::InternalRequest request;
    Done done;
  };

  ServerConfig config_;
  std::unique_ptr<storage::Backend> backend_;
  std::unique_ptr<mvcc::KvStore> kv_;
  std::unique_ptr<mvcc::WatchHub> watch_hub_;
  std::unique_ptr<lease::Lessor> lessor_;
  uint64_t cluster_id_ = 0;
  uint64_t member_id_ = 0;
  uint64_t term_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Proposal> queue_;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  std::thread applier_;
  std::thread lease_timer_;
  std::condition_variable lease_cv_;  // with mu_: wakes the lease timer on Stop
  std::atomic<uint64_t> entries_{0};
  std::atomic<uint64_t> fsyncs_{0};
};

}  // namespace cairn::etcdserver
