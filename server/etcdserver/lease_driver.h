// LeaseDriver: the member's lease work outside the applier (which applies grants, revokes and
// checkpoints to the store and tells the lessor).
//   - Grant: picks the id (when the client gave none) and adjusts the TTL as etcd does, then
//     proposes; every member applies the same grant.
//   - Renew (keepalive) and TimeToLive: only the leader's lessor runs timers, so a follower
//     forwards them (Forwarder); the peer handlers OnRenew/OnTimeToLive answer on the leader.
//   - On the leader, its own thread (the lease timer) proposes revokes of expired leases (at most
//     kLeaseRevokeBatch per tick, as etcd rate-limits them) and remaining-TTL checkpoints every
//     checkpoint interval; it also runs the member's `periodic` task on the same tick.
//
// Thread safety: thread-safe. Nothing blocks: Renew and TimeToLive answer through a callback,
// which a follower's forwarded call runs on a transport or forwarder thread (Forwarder).
#pragma once

#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cairnpb/internal.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/base/clock.h"
#include "server/etcdserver/forwarder.h"
#include "server/lease/lessor.h"
#include "server/mvcc/kv_store.h"
#include "server/transport/transport.h"

namespace cairn::etcdserver {

class LeaseDriver {
 public:
  using Done = std::function<void(mvcc::ApplyResult)>;
  struct Deps {
    lease::Lessor* lessor = nullptr;
    mvcc::KvStore* kv = nullptr;
    Forwarder* forwarder = nullptr;
    base::Clock* clock = base::Clock::Real();
    int64_t checkpoint_interval_ms = 0;  // <= 0: no checkpoints
    // Proposes through raft (Server::Propose).
    std::function<void(cairnpb::InternalRequest, Done)> propose;
    std::function<bool()> is_leader;
    std::function<bool()> is_learner;
    std::function<void(etcdserverpb::ResponseHeader*)> fill_header;
    // Calls `then` once the applier has reached the index committed now (on another thread
    // then, or at once); "server stopped" at Stop.
    std::function<void(std::function<void(absl::Status)> then)> wait_applied;
    // Run on every lease tick, leader or not (the member's periodic upkeep).
    std::function<void()> periodic;
  };

  explicit LeaseDriver(Deps deps) : deps_(std::move(deps)) {}
  // The peer transport, for forwarded calls (none: a member without peers). Called at most once,
  // in Server::Open, before any client call is served and before the raft thread starts.
  void AttachTransport(transport::Transport* transport) { transport_ = transport; }
  ~LeaseDriver() { Stop(); }

  // Starts the lease timer thread.
  void Start();
  // Stops and joins it. Idempotent.
  void Stop();

  // LeaseGrant: errors kLeaseTTLTooLarge, or those of Propose.
  void Grant(int64_t id, int64_t ttl_seconds, Done done);
  using RenewDone = std::function<void(absl::StatusOr<int64_t>)>;
  using TimeToLiveDone = std::function<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>)>;
  // LeaseKeepAlive: the granted TTL, or kLeaseNotFound; forwarded from a follower, which keeps
  // trying through a leader change for up to the leader wait (etcd does too).
  void Renew(int64_t id, RenewDone done);
  // LeaseTimeToLive, answered by the leader (forwarded from a follower, one attempt).
  void TimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& request, TimeToLiveDone done);

  // Peer handlers: a follower's forwarded call, answered only by the leader (else kNotLeader),
  // once it has applied what was committed when the call came (see WhenApplied).
  void OnRenew(int64_t id, RenewDone done);
  void OnTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& request, TimeToLiveDone done);

 private:
  // Runs `then` once the applied index has reached the commit index as of now (at once without
  // a `wait_applied` dependency).
  void WhenApplied(std::function<void(absl::Status)> then);
  void Loop();
  void RevokeExpired();
  void Checkpoint();
  absl::StatusOr<int64_t> RenewLocal(int64_t id);
  etcdserverpb::LeaseTimeToLiveResponse TimeToLiveLocal(
      const etcdserverpb::LeaseTimeToLiveRequest& request);

  Deps deps_;
  transport::Transport* transport_ = nullptr;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_checkpoint_ms_ = 0;  // lease timer thread
  std::thread thread_;
};

}  // namespace cairn::etcdserver
