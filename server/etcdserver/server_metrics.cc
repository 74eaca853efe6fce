#include "server/etcdserver/server_metrics.h"

#include "server/etcdserver/member_id.h"
#include "server/etcdserver/server.h"

namespace cairn::etcdserver {

// Names, help texts and buckets are etcd 3.5's (server/etcdserver/metrics.go, wal/metrics.go,
// mvcc/backend/metrics.go, rafthttp/metrics.go), so existing dashboards and alerts work.
ServerMetrics::ServerMetrics()
    : leader_changes_seen(registry.AddCounter("etcd_server_leader_changes_seen_total",
                                              "The number of leader changes seen.")),
      proposals_failed(registry.AddCounter("etcd_server_proposals_failed_total",
                                           "The total number of failed proposals seen.")),
      wal_fsync_seconds(registry.AddHistogram("etcd_disk_wal_fsync_duration_seconds",
                                              "The latency distributions of fsync called by WAL.",
                                              base::ExponentialBuckets(0.001, 2, 14))),
      backend_commit_seconds(
          registry.AddHistogram("etcd_disk_backend_commit_duration_seconds",
                                "The latency distributions of commit called by backend.",
                                base::ExponentialBuckets(0.001, 2, 14))) {}

base::Histogram* ServerMetrics::PeerRoundTrip(uint64_t peer) {
  absl::MutexLock lock(&mu_);
  base::Histogram*& h = peer_rtt_[peer];
  if (h == nullptr) {
    h = registry.AddHistogram("etcd_network_peer_round_trip_time_seconds",
                              "Round-Trip-Time histogram between peers",
                              base::ExponentialBuckets(0.0001, 2, 16), {{"To", IdToHex(peer)}});
  }
  return h;
}

void HeartbeatRtt::OnSend(const std::vector<raft::Message>& messages) {
  for (const raft::Message& m : messages) {
    if (m.type != raft::MessageType::kHeartbeat) continue;
    auto it = outstanding_.find(m.to);
    // A heartbeat or its response lost: time the next one instead of reporting the gap.
    if (it != outstanding_.end() && it->second.ElapsedSeconds() > kLostAfterSeconds) {
      outstanding_.erase(it);
    }
    outstanding_.try_emplace(m.to);
  }
}

void HeartbeatRtt::OnReceive(const raft::Message& m) {
  if (m.type != raft::MessageType::kHeartbeatResp) return;
  auto it = outstanding_.find(m.from);
  if (it == outstanding_.end()) return;
  metrics_->PeerRoundTrip(m.from)->Observe(it->second.ElapsedSeconds());
  outstanding_.erase(it);
}

}  // namespace cairn::etcdserver

// ---- the gauges Server reads from its components at scrape time ----

namespace cairn::etcdserver {
namespace {

double KeysTotal(storage::Backend* backend) {
  // RocksDB's estimate of the `latest` family's entries: one per live key (docs/keyspace.md).
  // Exact counting would scan every key at each scrape.
  uint64_t v = 0;
  backend->db()->GetIntProperty(backend->cf(storage::Cf::kLatest), "rocksdb.estimate-num-keys", &v);
  return static_cast<double>(v);
}

}  // namespace

void Server::RegisterMetrics() {
  base::MetricsRegistry& r = metrics_.registry;
  r.AddCallbackGauge("etcd_server_has_leader",
                     "Whether or not a leader exists. 1 is existence, 0 is not.", {},
                     [this] { return leader() != 0 ? 1.0 : 0.0; });
  r.AddCallbackGauge("etcd_server_is_leader",
                     "Whether or not this member is a leader. 1 if is, 0 otherwise.", {},
                     [this] { return is_leader() ? 1.0 : 0.0; });
  r.AddCallbackGauge("etcd_server_is_learner",
                     "Whether or not this member is a learner. 1 if is, 0 otherwise.", {},
                     [this] { return is_learner() ? 1.0 : 0.0; });
  r.AddCallbackGauge(
      "etcd_server_id",
      "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
      {{"server_id", IdToHex(member_id_)}}, [] { return 1.0; });
  r.AddCallbackGauge("etcd_server_proposals_committed_total",
                     "The total number of consensus proposals committed.", {},
                     [this] { return static_cast<double>(raft_->committed_index()); });
  r.AddCallbackGauge("etcd_server_proposals_applied_total",
                     "The total number of consensus proposals applied.", {},
                     [this] { return static_cast<double>(applied_index()); });
  r.AddCallbackGauge("etcd_server_proposals_pending",
                     "The current number of pending proposals to commit.", {},
                     [this] { return static_cast<double>(waits_->size()); });
  r.AddCallbackGauge("etcd_mvcc_db_total_size_in_bytes",
                     "Total size of the underlying database physically allocated in bytes.", {},
                     [this] { return static_cast<double>(db_size_bytes()); });
  r.AddCallbackGauge("etcd_debugging_mvcc_db_total_size_in_bytes",
                     "Total size of the underlying database physically allocated in bytes.", {},
                     [this] { return static_cast<double>(db_size_bytes()); });
  r.AddCallbackGauge("etcd_debugging_mvcc_keys_total", "Total number of keys.", {},
                     [this] { return KeysTotal(backend_.get()); });
  r.AddCallbackGauge("etcd_debugging_mvcc_current_revision", "The current revision of store.", {},
                     [this] { return static_cast<double>(revision()); });
  auto watchers = [this] {
    return static_cast<double>(watch_hub_->synced_count() + watch_hub_->unsynced_count());
  };
  r.AddCallbackGauge("etcd_mvcc_watcher_total", "Total number of watchers.", {}, watchers);
  r.AddCallbackGauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", {},
                     watchers);
  r.AddCallbackGauge("etcd_debugging_mvcc_slow_watcher_total",
                     "Total number of unsynced slow watchers.", {},
                     [this] { return static_cast<double>(watch_hub_->unsynced_count()); });
  r.AddCallbackCounter("cairn_wal_entries_total",
                       "Raft log entries written to the WAL (divided by "
                       "etcd_disk_wal_fsync_duration_seconds_count: entries per fsync).",
                       {}, [this] { return static_cast<double>(raft_->wal_entries()); });
  base::RegisterProcessMetrics(&r);
}

}  // namespace cairn::etcdserver
