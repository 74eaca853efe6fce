// Internal to server/transport: the Impl class behind Transport, shared by transport.cc (the
// sending side: peers, senders, snapshot sends, forwarded calls, lifecycle) and peer_service.cc
// (the receiving side: the cairnpb.Peer service). Not for use outside this directory.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <deque>
#include <list>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cairnpb/peer.grpc.pb.h"
#include "server/base/crc32c.h"
#include "server/base/env.h"
#include "server/base/logging.h"
#include "server/base/url.h"
#include "server/transport/tls.h"

#include "server/transport/transport.h"

namespace cairn::transport {

// Upper bound of one RaftFrame's messages (also kept under half the receive limit).
constexpr size_t kMaxFrameBytes = 4u << 20;

inline std::string IdHex(uint64_t id) { return absl::StrCat(absl::Hex(id)); }

// The whole transport. Also the cairnpb.Peer service: the gRPC server calls the overrides below
// on its own threads.
class Transport::Impl final
    : public cairnpb::Peer::WithCallbackMethod_LeaseRenew<
          cairnpb::Peer::WithCallbackMethod_LeaseTimeToLive<
              cairnpb::Peer::WithCallbackMethod_MemberPromote<
                  cairnpb::Peer::WithCallbackMethod_HashKV<cairnpb::Peer::Service>>>> {
 public:
  Impl(uint64_t cluster_id, uint64_t member_id, std::string snap_dir, Handler* handler,
       TransportOptions options)
      : member_id_(member_id),
        cluster_id_(cluster_id),
        snap_dir_(std::move(snap_dir)),
        handler_(handler),
        options_(options),
        frame_cap_bytes_(std::max<size_t>(
            1, std::min(kMaxFrameBytes,
                        static_cast<size_t>(std::max(options.max_receive_message_bytes, 2)) / 2))) {
    reporter_ = std::thread([this] { RunReporter(); });
  }

  ~Impl() override { Stop(); }

  absl::Status StartServer(const std::vector<std::string>& listen_urls);
  void Stop();

  void SetClusterId(uint64_t cluster_id) { cluster_id_.store(cluster_id); }
  std::vector<int> BoundPorts() const { return ports_; }
  void AddPeer(uint64_t id, const std::vector<std::string>& urls);
  void RemovePeer(uint64_t id);
  void Send(std::vector<raft::Message> messages);

  // The unary Peer methods of the callback stub.
  template <typename Request, typename Response>
  using AsyncMethod = void (cairnpb::Peer::Stub::async::*)(grpc::ClientContext*, const Request*,
                                                           Response*,
                                                           std::function<void(grpc::Status)>);
  // Calls `method` on `peer_id` with this member's header and a deadline of the smaller of
  // `timeout_ms` and the forward timeout; `done` gets the response or the error (Unavailable for
  // an unknown peer, one without a URL, or a stopped transport; else the peer's).
  template <typename Request, typename Response>
  void CallPeer(uint64_t peer_id, AsyncMethod<Request, Response> method, Request request,
                int64_t timeout_ms, std::function<void(absl::StatusOr<Response>)> done);
  Transport::Stats stats() const {
    Transport::Stats s;
    s.sent = sent_.load();
    s.dropped = dropped_.load();
    s.received = received_.load();
    s.snapshots_sent = snapshots_sent_.load();
    s.snapshots_received = snapshots_received_.load();
    return s;
  }

  // cairnpb.Peer.
  grpc::Status Raft(grpc::ServerContext* context, grpc::ServerReader<cairnpb::RaftFrame>* reader,
                    cairnpb::StreamAck* response) override;
  grpc::Status Snapshot(grpc::ServerContext* context,
                        grpc::ServerReader<cairnpb::SnapshotChunk>* reader,
                        cairnpb::SnapshotAck* response) override;
  grpc::Status Members(grpc::ServerContext* context, const cairnpb::MembersRequest* request,
                       cairnpb::MembersResponse* response) override;
  // Callback methods: the leader answers once it has applied what was committed, without
  // holding a peer thread meanwhile.
  grpc::ServerUnaryReactor* LeaseRenew(grpc::CallbackServerContext* context,
                                       const cairnpb::LeaseRenewRequest* request,
                                       cairnpb::LeaseRenewResponse* response) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(
      grpc::CallbackServerContext* context, const cairnpb::LeaseTimeToLiveRequest* request,
      etcdserverpb::LeaseTimeToLiveResponse* response) override;
  // A callback method: the promotion completes when applied, without holding a peer thread.
  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* context,
                                          const cairnpb::MemberPromoteRequest* request,
                                          cairnpb::MemberPromoteResponse* response) override;
  // A callback method: the hash is computed on the member's maintenance thread.
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* context,
                                   const cairnpb::HashKVRequest* request,
                                   etcdserverpb::HashKVResponse* response) override;

 private:
  // One remote member: its URLs, its bounded queue and its sender thread.
  struct Peer {
    explicit Peer(uint64_t id) : id(id) {}
    const uint64_t id;
    absl::Mutex mu;
    absl::CondVar cv;  // queue got a message, or stop
    std::vector<std::string> urls ABSL_GUARDED_BY(mu);
    size_t url_index ABSL_GUARDED_BY(mu) = 0;  // the URL `channel` dials
    std::shared_ptr<grpc::Channel> channel ABSL_GUARDED_BY(mu);
    std::deque<std::string> queue ABSL_GUARDED_BY(mu);  // encoded raft messages
    size_t queued_bytes ABSL_GUARDED_BY(mu) = 0;
    bool stop ABSL_GUARDED_BY(mu) = false;
    // The sender's current stream, cancelled to unblock it (stop, URL change).
    grpc::ClientContext* stream_context ABSL_GUARDED_BY(mu) = nullptr;
    // Started by AddPeer before the peer is published; joined by whoever unpublishes it.
    std::thread thread;
  };

  // One snapshot send in flight.
  struct SnapshotSend {
    std::thread thread;
    bool done = false;                       // guarded by Impl::mu_
    grpc::ClientContext* context = nullptr;  // guarded by Impl::mu_; cancelled by Stop
  };

  std::shared_ptr<Peer> FindPeer(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends forwarded calls: outgoing ones are cancelled and waited for, incoming ones still
  // waiting are answered "transport stopped".
  void StopCalls();
  // Serves an incoming forwarded call: checks the header, then `ask`s the handler and answers
  // with what it reports (`fill` writes a value into the response). Stop answers the calls still
  // waiting, and the handler's late answer then goes nowhere.
  template <typename T>
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context,
                                   const cairnpb::PeerHeader& header,
                                   std::function<void(std::function<void(absl::StatusOr<T>)>)> ask,
                                   std::function<void(T)> fill);
  // The peer's channel, created on first use (nullptr when it has no usable URL).
  std::shared_ptr<grpc::Channel> PeerChannel(Peer* peer) ABSL_LOCKS_EXCLUDED(peer->mu);
  cairnpb::PeerHeader Header(uint64_t to) const;
  grpc::Status CheckHeader(const cairnpb::PeerHeader& header) const;

  void RunSender(std::shared_ptr<Peer> peer);
  void StopPeer(Peer* peer);
  void StartSnapshotSend(raft::Message message);
  void RunSnapshotSend(SnapshotSend* send, std::shared_ptr<Peer> peer, raft::Message message);
  bool SendSnapshot(Peer* peer, raft::Message message, grpc::ClientContext* context);

  void ReportUnreachable(uint64_t id);
  void ReportSnapshotSent(uint64_t id, bool ok);
  void RunReporter();

  const uint64_t member_id_;
  std::atomic<uint64_t> cluster_id_;
  const std::string snap_dir_;
  Handler* const handler_;
  const TransportOptions options_;
  const size_t frame_cap_bytes_;
  std::unique_ptr<grpc::Server> server_;  // set by StartServer, reset by Stop
  std::vector<int> ports_;                // set by StartServer

  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> snapshots_sent_{0};
  std::atomic<uint64_t> snapshots_received_{0};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<uint64_t, std::shared_ptr<Peer>> peers_ ABSL_GUARDED_BY(mu_);
  std::list<std::unique_ptr<SnapshotSend>> snapshot_sends_ ABSL_GUARDED_BY(mu_);
  int snapshot_sends_in_flight_ ABSL_GUARDED_BY(mu_) = 0;

  // Forwarded calls. Outgoing ones in flight (by context), cancelled and waited for by Stop.
  // Incoming ones not answered yet: Stop answers them so the server can shut down.
  // The incoming ones live apart from Impl, shared with the handler's answer callbacks, which may
  // run after the transport is gone.
  struct IncomingCall {
    grpc::ServerUnaryReactor* reactor = nullptr;
    bool finished = false;  // guarded by IncomingCalls::mu
  };
  struct IncomingCalls {
    absl::Mutex mu;
    bool closed ABSL_GUARDED_BY(mu) = false;
    std::set<std::shared_ptr<IncomingCall>> pending ABSL_GUARDED_BY(mu);
  };
  absl::Mutex calls_mu_;
  absl::CondVar calls_cv_;  // an outgoing call ended
  bool calls_closed_ ABSL_GUARDED_BY(calls_mu_) = false;
  std::set<grpc::ClientContext*> outgoing_ ABSL_GUARDED_BY(calls_mu_);
  const std::shared_ptr<IncomingCalls> incoming_ = std::make_shared<IncomingCalls>();

  // Handler callbacks (OnUnreachable, OnSnapshotSent) go through one reporter thread, so Send()
  // never calls into the handler on the caller's thread and a flood of drops to one peer becomes
  // one OnUnreachable per round.
  absl::Mutex report_mu_;
  absl::CondVar report_cv_;
  bool report_stop_ ABSL_GUARDED_BY(report_mu_) = false;
  std::set<uint64_t> unreachable_ ABSL_GUARDED_BY(report_mu_);
  std::vector<std::pair<uint64_t, bool>> snapshot_results_ ABSL_GUARDED_BY(report_mu_);
  std::thread reporter_;
};

}  // namespace cairn::transport
