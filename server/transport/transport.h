// Transport: the member-to-member link of a cairn cluster (cairnpb.Peer, proto/cairnpb/peer.proto)
// on --listen-peer-urls.
//
// Sending: Send() never blocks. Each peer has its own bounded outgoing queue and its own sender
// (a long-lived client stream of RaftFrames, re-established with backoff); a message that does
// not fit the queue is dropped and the peer is reported unreachable (Raft retransmits). A slow or
// dead peer therefore never stalls the raft thread or the other peers. kSnap messages are sent on
// their own stream: the transport asks the Handler for the state-machine dump and streams it in
// chunks, then reports the outcome with Handler::OnSnapshotSent.
//
// Receiving: a gRPC server on the listen URLs. Frames from another cluster id are refused with
// FAILED_PRECONDITION "cluster ID mismatch". Incoming raft messages go to Handler::OnRaftMessage.
// An incoming snapshot is written to a file under the snapshot directory, verified
// (docs/snapshot_format.md) and only then handed to Handler::OnSnapshot; a broken stream or a bad
// checksum deletes the file and nothing reaches raft.
//
// Forwarding (followers to the leader): LeaseRenew, LeaseTimeToLive, MemberPromote and Members
// (and HashKV, the corruption check's question to any member) are asynchronous unary calls to a
// peer: they return at once and report to a callback on a gRPC
// thread. Calls in flight are cancelled when the transport stops, and the destructor waits for
// their callbacks. FetchMembers (blocking) is for a member joining an existing cluster.
//
// Thread safety: every public method is thread-safe. Handler methods are called on transport
// threads and must not block for long (queue the work and return).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairnpb/peer.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/base/env.h"
#include "server/raft/message.h"
#include "server/transport/tls_config.h"

namespace cairn::transport {

// Limits (docs/limits.md).
struct TransportOptions {
  // Raft messages queued for one peer before new ones are dropped.
  size_t max_queued_messages = 4096;
  // Bytes of encoded raft messages queued for one peer before new ones are dropped.
  size_t max_queued_bytes = 64u << 20;
  // Snapshot data chunk size.
  size_t snapshot_chunk_bytes = 1u << 20;
  // Snapshot sends in flight at once (to all peers).
  int max_concurrent_snapshot_sends = 2;
  // Deadline of the unary forwarding calls.
  int forward_timeout_ms = 5000;
  // Largest gRPC message accepted on the peer port.
  int max_receive_message_bytes = 64 << 20;
  // Where incoming snapshot files are written, synced and renamed (not owned; outlives the
  // Transport).
  base::Env* env = base::Env::Default();
  // Peer TLS (--peer-* flags): credentials of the https listen URLs and of channels to https
  // peers (docs/security.md).
  TlsConfig tls;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // A raft message (never kSnap) from a peer of this cluster.
  virtual void OnRaftMessage(raft::Message message) = 0;
  // A verified snapshot: `message` is the kSnap message (snapshot.data empty), `path` the file
  // holding the dump. The handler owns the file from now on.
  virtual void OnSnapshot(raft::Message message, std::string path) = 0;
  // Sending to `to` failed (queue full, stream broken): raft should probe it again.
  virtual void OnUnreachable(uint64_t to) = 0;
  // Outcome of a snapshot send to `to`.
  virtual void OnSnapshotSent(uint64_t to, bool ok) = 0;
  // Leader side of a snapshot: write the current state-machine dump to `sink` in pieces; `sink`
  // returns false when the receiver is gone (then stop and return an error).
  virtual absl::Status WriteSnapshot(const std::function<bool(std::string_view)>& sink) = 0;
  // Forwarded calls, answered as the leader (or with an etcd error: kNotLeader, kLeaseNotFound...).
  // `done` is called exactly once, possibly later from another thread (it must not block the
  // calling transport thread until then).
  virtual void OnLeaseRenew(int64_t id, std::function<void(absl::StatusOr<int64_t>)> done) = 0;
  virtual void OnLeaseTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request,
      std::function<void(absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse>)> done) = 0;
  virtual cairnpb::MembersResponse OnMembers() = 0;
  // A MemberPromote forwarded by a follower: `done` when applied or refused (it must not block the
  // calling transport thread until then).
  virtual void OnMemberPromote(uint64_t /*id*/, std::function<void(absl::Status)> done) {
    done(absl::UnimplementedError("member promote is not served here"));
  }
  // A peer's corruption check asks for this member's HashKV at `revision` (0: the current one).
  // `done` gets the response (header revision: the revision hashed) or Maintenance.HashKV's error
  // (future revision, compacted); called exactly once, possibly later from another thread.
  virtual void OnHashKV(int64_t /*revision*/,
                        std::function<void(absl::StatusOr<etcdserverpb::HashKVResponse>)> done) {
    done(absl::UnimplementedError("hash kv is not served here"));
  }
  // True if `id` was removed from the cluster: its raft streams are refused with
  // kMemberRemovedMessage, which is how a removed member learns of its removal (the leader stops
  // replicating to it as soon as the removal is in its log, so it may never see the entry).
  virtual bool IsRemovedMember(uint64_t /*id*/) { return false; }
  // A peer refused this member's raft stream because this member was removed from the cluster.
  // Called from a sender thread, possibly more than once.
  virtual void OnRemovedFromCluster() {}
};

// The refusal a removed member's raft stream gets (FAILED_PRECONDITION), etcd's wording.
inline constexpr char kMemberRemovedMessage[] =
    "the member has been permanently removed from the cluster";

class Transport {
 public:
  // Binds the peer server on `listen_urls` ("http://host:port"; port 0 picks one). `snap_dir` is
  // where incoming snapshots are written (created if missing). `cluster_id` may be 0 until
  // SetClusterId (a member joining an existing cluster learns it from FetchMembers).
  static absl::StatusOr<std::unique_ptr<Transport>> Start(
      const std::vector<std::string>& listen_urls, uint64_t cluster_id, uint64_t member_id,
      std::string snap_dir, Handler* handler, TransportOptions options = {});
  // Stops senders and the server; pending messages are dropped. Waits for transport threads.
  ~Transport();

  void SetClusterId(uint64_t cluster_id);
  // Bound ports, in listen-URL order (for port 0).
  std::vector<int> BoundPorts() const;

  // Peers: adding an existing id updates its URLs (MemberUpdate); removing drops its queue.
  void AddPeer(uint64_t id, const std::vector<std::string>& urls);
  void RemovePeer(uint64_t id);

  // Queues messages for their `to` peers; kSnap starts a snapshot send. Never blocks. Messages to
  // unknown peers are dropped and reported unreachable.
  void Send(std::vector<raft::Message> messages);

  // Forwarding to a peer (the leader), asynchronous: `done` is called exactly once, on a gRPC
  // thread or (when the call cannot start) on the caller's, and must not block. The call gives up
  // after the smaller of `timeout_ms` and TransportOptions::forward_timeout_ms. Errors: the peer's
  // etcd error, or Unavailable/DeadlineExceeded/Cancelled when it cannot be reached or the
  // transport stops.
  template <typename T>
  using Reply = std::function<void(absl::StatusOr<T>)>;
  void LeaseRenew(uint64_t peer, int64_t id, int64_t timeout_ms, Reply<int64_t> done);
  void LeaseTimeToLive(uint64_t peer, const etcdserverpb::LeaseTimeToLiveRequest& request,
                       int64_t timeout_ms, Reply<etcdserverpb::LeaseTimeToLiveResponse> done);
  void MemberPromote(uint64_t peer, uint64_t id, int64_t timeout_ms,
                     std::function<void(absl::Status)> done);
  // The peer's MembersResponse (members, leader, the members it counts as active).
  void Members(uint64_t peer, int64_t timeout_ms, Reply<cairnpb::MembersResponse> done);
  // The peer's HashKV at `revision` (Handler::OnHashKV on its side), for the corruption check.
  void HashKV(uint64_t peer, int64_t revision, int64_t timeout_ms,
              Reply<etcdserverpb::HashKVResponse> done);

  // Asks the first reachable of `peer_urls` for the cluster's members (a member joining with
  // --initial-cluster-state existing).
  static absl::StatusOr<cairnpb::MembersResponse> FetchMembers(
      const std::vector<std::string>& peer_urls, int timeout_ms, TlsConfig tls = {});

  struct Stats {
    uint64_t sent = 0;     // raft messages handed to gRPC
    uint64_t dropped = 0;  // raft messages dropped (queue full, unknown peer)
    uint64_t received = 0;
    uint64_t snapshots_sent = 0;
    uint64_t snapshots_received = 0;
  };
  Stats stats() const;

 private:
  class Impl;
  explicit Transport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::transport
