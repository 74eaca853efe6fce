// ServerMetrics: the member's metrics registry and the instruments its hot paths record into,
// under etcd's metric names (docs/metrics.md). One per member (Server owns it), so tests that run
// several members in one process see each member's own figures.
//
// Thread safety: recording is lock-free (base/metrics.h). HeartbeatRtt is owned by the raft
// thread.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "server/base/metrics.h"
#include "server/raft/message.h"

namespace cairn::etcdserver {

struct ServerMetrics {
  ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // etcd_network_peer_round_trip_time_seconds{To="<peer id hex>"}, created on first use.
  base::Histogram* PeerRoundTrip(uint64_t peer);

  base::MetricsRegistry registry;
  base::Counter* leader_changes_seen;
  base::Counter* proposals_failed;
  base::Histogram* wal_fsync_seconds;
  base::Histogram* backend_commit_seconds;

 private:
  absl::Mutex mu_;
  std::map<uint64_t, base::Histogram*> peer_rtt_ ABSL_GUARDED_BY(mu_);
};

// Heartbeat round trips (etcd measures peer round trips with its own probes; cairn times the
// heartbeats raft already sends): the time from a heartbeat to a peer until that peer's response,
// at most one outstanding per peer. Raft thread only.
class HeartbeatRtt {
 public:
  explicit HeartbeatRtt(ServerMetrics* metrics) : metrics_(metrics) {}
  void OnSend(const std::vector<raft::Message>& messages);
  void OnReceive(const raft::Message& message);

 private:
  static constexpr double kLostAfterSeconds = 5;
  ServerMetrics* metrics_;
  std::map<uint64_t, base::Stopwatch> outstanding_;  // peer -> since its heartbeat left
};

}  // namespace cairn::etcdserver
