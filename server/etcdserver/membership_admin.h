// MembershipAdmin: client-facing membership changes (MemberAdd/Remove/Update/Promote) with etcd's
// validation and --strict-reconfig-check, the peer-activity view that check needs, and the admin
// executor they run on (docs/cluster.md).
//
//   api thread -> RunAdmin(task) -> admin thread: AddMember(...) -> MayAddMember (may ask the
//   leader for its view through the Forwarder, asynchronously) -> propose the conf change ->
//   `done` when applied
//
// --strict-reconfig-check, as etcd: "re-configuration failed due to not enough started members"
// (Unknown, as etcd 3.4) or "unhealthy cluster" (Unavailable). The view of who is active is the
// leader's (a follower asks it), bounded by the Forwarder's leader wait.
//
// Thread safety: thread-safe. Nothing blocks: what needs the leader (its view of active members,
// a learner's promotion) goes through the Forwarder and continues on its callback. The admin
// thread runs member changes in arrival order. NotePeerMessage and NotePeerUnreachable are
// called by transport threads.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cairnpb/internal.pb.h"
#include "cairnpb/peer.pb.h"
#include "server/base/clock.h"
#include "server/etcdserver/forwarder.h"
#include "server/etcdserver/membership.h"
#include "server/mvcc/kv_store.h"
#include "server/raft/message.h"
#include "server/transport/transport.h"

namespace cairn::etcdserver {

class MembershipAdmin {
 public:
  using MemberDone = std::function<void(absl::StatusOr<cairnpb::Member>)>;
  struct Deps {
    Membership* membership = nullptr;
    Forwarder* forwarder = nullptr;
    base::Clock* clock = base::Clock::Real();
    uint64_t member_id = 0;
    std::string initial_cluster_token;
    bool strict_reconfig_check = true;
    int64_t election_timeout_ms = 1000;
    std::function<uint64_t()> leader;
    // Proposes a conf change (the raft driver re-proposes it until applied); `done` when applied.
    std::function<void(raft::ConfChange, MemberDone)> propose_conf_change;
    // Proposes a request through raft (Server::Propose).
    std::function<void(cairnpb::InternalRequest, std::function<void(mvcc::ApplyResult)>)> propose;
    // Leader only: every member's match index (for promoting a learner).
    std::function<std::map<uint64_t, uint64_t>()> progress_match;
  };

  explicit MembershipAdmin(Deps deps);
  // The peer transport, for forwarded calls (none: a member without peers). Called at most once,
  // in Server::Open, before any client call is served and before the raft thread starts.
  void AttachTransport(transport::Transport* transport) { transport_ = transport; }
  ~MembershipAdmin() { Stop(); }

  // Runs `task` on the admin thread, in order. Tasks still queued at Stop run then (and fail
  // fast: the member is stopping); after Stop a task runs on the caller's thread.
  void RunAdmin(std::function<void()> task);
  // Runs what is queued and joins the admin thread. Idempotent.
  void Stop();

  void AddMember(const std::vector<std::string>& peer_urls, bool learner, MemberDone done);
  void RemoveMember(uint64_t id, MemberDone done);
  void UpdateMember(uint64_t id, const std::vector<std::string>& peer_urls, MemberDone done);
  void PromoteMember(uint64_t id, MemberDone done);

  // Peer activity, from the transport: a raft message from `from`, or `to` found unreachable.
  void NotePeerMessage(uint64_t from);
  void NotePeerUnreachable(uint64_t to);

  // Peer handlers: the Members call (with this member's view of who is active) and a follower's
  // forwarded MemberPromote (`done` when applied or refused; leader only).
  cairnpb::MembersResponse OnMembers(uint64_t cluster_id);
  void OnMemberPromote(uint64_t id, std::function<void(absl::Status)> done);

  // This member and the peers it has heard from steadily (no gap longer than an election
  // timeout, never found unreachable) for at least the health interval, up to now: etcd's
  // "connected since".
  std::set<uint64_t> ActiveMembersLocal();

 private:
  void Loop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); }
  using StatusDone = std::function<void(absl::Status)>;
  // --strict-reconfig-check: `next` gets OK or why the change is refused.
  void MayAddMember(bool learner, StatusDone next);
  void MayRemoveMember(uint64_t id, StatusDone next);
  absl::Status MayPromoteMember();
  absl::Status LearnerReady(uint64_t id);
  // The leader's view of the active members (asked for on a follower).
  void ActiveMembers(Forwarder::Reply<std::set<uint64_t>> done);
  void ForwardPromote(uint64_t leader, const cairnpb::Member& learner, MemberDone done);

  Deps deps_;
  transport::Transport* transport_ = nullptr;

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;

  // Raft messages received from each peer: since when without a gap longer than an election
  // timeout, and the last one. A peer reported unreachable is dropped until heard again.
  struct PeerContact {
    int64_t since_ms = 0;
    int64_t last_ms = 0;
  };
  absl::Mutex contact_mu_;
  std::map<uint64_t, PeerContact> peer_contact_ ABSL_GUARDED_BY(contact_mu_);
};

}  // namespace cairn::etcdserver
