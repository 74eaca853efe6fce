// Corruption detection across members (etcd's --experimental-initial-corrupt-check and
// --experimental-corrupt-check-time; docs/maintenance.md "Corruption checks").
//
// Members compare HashKV (docs/maintenance.md: equal on every member at one revision) over the
// peer transport (the peer RPC cairnpb.Peer HashKV, Server::PeerHashKV), as etcd asks on its peer
// URLs: with the peer TLS settings and outside client auth, so the check works with auth enabled.
//   InitialCheck: before serving, this member's HashKV at its revision against each peer's at the
//     same revision; a mismatch at the same compact revision refuses to start.
//   periodic (leader only): the same comparison every interval; a mismatching member gets the
//     CORRUPT alarm, proposed through raft.
// Peers that cannot answer (down, behind: future revision, or compacted past it) are skipped, as
// etcd does.
//
// Thread safety: InitialCheck blocks the caller; Start/Stop from one thread; the periodic pass runs
// on the checker's own thread.
#pragma once

#include <cstdint>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/etcdserver/server.h"

namespace cairn::api {

// Deadline of one peer's HashKV (docs/limits.md; the transport caps it at its forward deadline).
inline constexpr int64_t kPeerHashKvTimeoutMs = 5000;

class CorruptChecker {
 public:
  explicit CorruptChecker(etcdserver::Server* server) : server_(server) {}
  ~CorruptChecker() { Stop(); }

  // etcd: "<id> found data inconsistency with peers" (kDataLoss) on a mismatch.
  static absl::Status InitialCheck(etcdserver::Server* server);

  // Starts the periodic check every `interval_ms` (> 0).
  void Start(int64_t interval_ms);
  void Stop();
  // One pass (leader only; a follower does nothing). Returns the members found mismatching.
  std::vector<uint64_t> CheckOnce();

 private:
  etcdserver::Server* const server_;
  std::thread thread_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace cairn::api
