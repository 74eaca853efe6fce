#include "server/transport/transport.h"

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

namespace cairn::transport {

namespace {

// Sender reconnect backoff, doubled after each failure and reset by a successful write. Short, so
// a restarted peer is back within a second (raft's election timeout is larger).
constexpr int kInitialBackoffMs = 50;
constexpr int kMaxBackoffMs = 1000;
// HTTP/2 keepalive: a peer that stops answering (SIGSTOP, partition) breaks its streams within
// about 15 s instead of leaving a sender blocked on flow control forever.
constexpr int kKeepaliveTimeMs = 10000;
constexpr int kKeepaliveTimeoutMs = 5000;
// In-flight peer calls get this long to finish when the transport stops; then they are cancelled.
constexpr int kServerShutdownMs = 100;
// Upper bound of one RaftFrame's messages (also kept under half the receive limit).
constexpr size_t kMaxFrameBytes = 4u << 20;

// Codes are numerically equal in gRPC and absl; messages pass through unchanged so the etcd error
// strings of a forwarded call reach the follower's client verbatim.
grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// `url` is the peer URL (http:// or https://, which picks the credentials); `target` its host:port.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& url, const std::string& target,
                                          int max_receive_message_bytes, const TlsConfig& tls) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kInitialBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxBackoffMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Every channel gets its own connection, as if each member were its own process (several
  // transports share one process in tests; a shared subchannel would tie their fates together).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(max_receive_message_bytes);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(target, ChannelCredentialsFor(url, tls), args);
}

std::string IdHex(uint64_t id) { return absl::StrCat(absl::Hex(id)); }

// gRPC deadlines are absolute times that gRPC enforces on its own real clock, so they come from
// the real system clock, not from an injected base::Clock (allowed in tests/deps/check_io.py).
std::chrono::system_clock::time_point DeadlineAfterMs(int ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

// An incoming snapshot file being written: removed on destruction unless Keep() succeeded.
class SnapshotFile {
 public:
  SnapshotFile(base::Env* env, std::unique_ptr<base::WritableFile> file, std::string path)
      : env_(env), file_(std::move(file)), path_(std::move(path)) {}
  SnapshotFile(const SnapshotFile&) = delete;
  SnapshotFile& operator=(const SnapshotFile&) = delete;
  ~SnapshotFile() {
    file_.reset();
    if (!kept_) (void)env_->RemoveFile(path_);
  }

  absl::Status Append(std::string_view data) { return file_->Append(data); }

  // Syncs the file, renames it to `final_path` and syncs the directory, so the file the handler
  // receives is durable under its final name.
  absl::Status Keep(const std::string& dir, const std::string& final_path) {
    if (absl::Status s = file_->Sync(); !s.ok()) return Internal(s);
    file_.reset();
    if (absl::Status s = env_->RenameFile(path_, final_path); !s.ok()) return Internal(s);
    kept_ = true;
    if (absl::Status s = env_->SyncDir(dir); !s.ok()) {
      (void)env_->RemoveFile(final_path);
      return Internal(s);
    }
    return absl::OkStatus();
  }

 private:
  static absl::Status Internal(const absl::Status& s) {
    return absl::InternalError(std::string(s.message()));
  }

  base::Env* const env_;
  std::unique_ptr<base::WritableFile> file_;
  std::string path_;
  bool kept_ = false;
};

}  // namespace

// The whole transport. Also the cairnpb.Peer service: the gRPC server calls the overrides below
// on its own threads.
class Transport::Impl final
    : public cairnpb::Peer::WithCallbackMethod_LeaseRenew<
          cairnpb::Peer::WithCallbackMethod_LeaseTimeToLive<
              cairnpb::Peer::WithCallbackMethod_MemberPromote<cairnpb::Peer::Service>>> {
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

absl::Status Transport::Impl::StartServer(const std::vector<std::string>& listen_urls) {
  base::Env* env = options_.env;
  if (absl::Status s = env->CreateDirs(snap_dir_); !s.ok()) {
    return absl::InternalError("cannot create " + snap_dir_ + ": " + std::string(s.message()));
  }
  // A crash mid-receive leaves a partial file behind; nothing refers to it.
  absl::StatusOr<std::vector<std::string>> names = env->ListDir(snap_dir_);
  if (names.ok()) {
    for (const std::string& name : *names) {
      if (name.rfind("recv-", 0) == 0 && name.size() > 4 &&
          name.compare(name.size() - 4, 4, ".tmp") == 0) {
        (void)env->RemoveFile(base::JoinPath(snap_dir_, name));
      }
    }
  }
  if (listen_urls.empty()) return absl::OkStatus();  // a transport that only sends

  grpc::ServerBuilder builder;
  std::vector<std::string> hostports;
  std::vector<std::unique_ptr<int>> ports;
  for (const auto& url : listen_urls) {
    auto hp = base::HostPortOfUrl(url);
    if (!hp.ok()) return hp.status();
    hostports.push_back(*hp);
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(*hp, ServerCredentialsFor(url, options_.tls), ports.back().get());
  }
  // Two members must not silently share a peer port (gRPC sets SO_REUSEPORT by default).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Let the senders' keepalive pings through, and ping dead senders ourselves.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kKeepaliveTimeMs / 2);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  builder.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(INT_MAX);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  if (!server_) {
    return absl::UnavailableError("cannot listen on the peer URLs (--listen-peer-urls)");
  }
  for (size_t i = 0; i < hostports.size(); ++i) {
    if (*ports[i] == 0) {
      server_->Shutdown();
      server_->Wait();
      server_.reset();
      return absl::UnavailableError("cannot listen on " + listen_urls[i] + " (--listen-peer-urls)");
    }
    ports_.push_back(*ports[i]);
    CAIRN_LOG(kInfo, "transport") << "serving peers on "
                                  << hostports[i].substr(0, hostports[i].rfind(':')) << ":"
                                  << *ports[i];
  }
  return absl::OkStatus();
}

void Transport::Impl::Stop() {
  StopCalls();
  std::map<uint64_t, std::shared_ptr<Peer>> peers;
  std::list<std::unique_ptr<SnapshotSend>> sends;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    peers.swap(peers_);
    for (auto& send : snapshot_sends_) {
      if (send->context != nullptr) send->context->TryCancel();
    }
    sends.swap(snapshot_sends_);
  }
  for (auto& [id, peer] : peers) StopPeer(peer.get());
  // Snapshot threads touch only their own SnapshotSend (alive in `sends`) and mu_.
  for (auto& send : sends) send->thread.join();
  if (server_) {
    server_->Shutdown(DeadlineAfterMs(kServerShutdownMs));
    server_->Wait();
    server_.reset();
  }
  {
    absl::MutexLock lock(&report_mu_);
    report_stop_ = true;
    report_cv_.Signal();
  }
  reporter_.join();
}

std::shared_ptr<Transport::Impl::Peer> Transport::Impl::FindPeer(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : it->second;
}

std::shared_ptr<grpc::Channel> Transport::Impl::PeerChannel(Peer* peer) {
  absl::MutexLock lock(&peer->mu);
  if (peer->channel == nullptr && !peer->urls.empty()) {
    const std::string& url = peer->urls[peer->url_index % peer->urls.size()];
    auto target = base::HostPortOfUrl(url);
    if (!target.ok()) {
      CAIRN_LOG(kWarn, "transport")
          << "peer " << IdHex(peer->id) << ": " << target.status().message();
      return nullptr;
    }
    peer->channel = NewChannel(url, *target, options_.max_receive_message_bytes, options_.tls);
  }
  return peer->channel;
}

cairnpb::PeerHeader Transport::Impl::Header(uint64_t to) const {
  cairnpb::PeerHeader header;
  header.set_cluster_id(cluster_id_.load());
  header.set_from(member_id_);
  header.set_to(to);
  return header;
}

grpc::Status Transport::Impl::CheckHeader(const cairnpb::PeerHeader& header) const {
  // etcd refuses a peer of another cluster; 0 on either side means "not known yet".
  uint64_t ours = cluster_id_.load();
  if (ours != 0 && header.cluster_id() != 0 && header.cluster_id() != ours) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch");
  }
  if (member_id_ != 0 && header.to() != 0 && header.to() != member_id_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "member ID mismatch");
  }
  return grpc::Status::OK;
}

void Transport::Impl::AddPeer(uint64_t id, const std::vector<std::string>& urls) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  auto it = peers_.find(id);
  if (it != peers_.end()) {
    Peer* peer = it->second.get();
    absl::MutexLock peer_lock(&peer->mu);
    if (peer->urls == urls) return;
    peer->urls = urls;
    peer->url_index = 0;
    peer->channel.reset();
    // The sender reconnects to the new URLs.
    if (peer->stream_context != nullptr) peer->stream_context->TryCancel();
    return;
  }
  auto peer = std::make_shared<Peer>(id);
  {
    absl::MutexLock peer_lock(&peer->mu);
    peer->urls = urls;
  }
  peer->thread = std::thread([this, peer] { RunSender(peer); });
  peers_.emplace(id, std::move(peer));
}

void Transport::Impl::RemovePeer(uint64_t id) {
  std::shared_ptr<Peer> peer;
  {
    absl::MutexLock lock(&mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    peer = std::move(it->second);
    peers_.erase(it);
  }
  StopPeer(peer.get());
}

void Transport::Impl::StopPeer(Peer* peer) {
  {
    absl::MutexLock lock(&peer->mu);
    peer->stop = true;
    dropped_ += peer->queue.size();
    peer->queue.clear();
    peer->queued_bytes = 0;
    if (peer->stream_context != nullptr) peer->stream_context->TryCancel();
    peer->cv.SignalAll();
  }
  peer->thread.join();
}

void Transport::Impl::Send(std::vector<raft::Message> messages) {
  for (auto& message : messages) {
    if (message.type == raft::MessageType::kSnap) {
      StartSnapshotSend(std::move(message));
      continue;
    }
    std::shared_ptr<Peer> peer = FindPeer(message.to);
    bool queued = false;
    if (peer != nullptr) {
      std::string bytes = raft::EncodeMessage(message);
      absl::MutexLock lock(&peer->mu);
      if (!peer->stop && peer->queue.size() < options_.max_queued_messages &&
          peer->queued_bytes + bytes.size() <= options_.max_queued_bytes) {
        peer->queued_bytes += bytes.size();
        peer->queue.push_back(std::move(bytes));
        peer->cv.Signal();
        queued = true;
      }
    }
    if (!queued) {
      ++dropped_;
      ReportUnreachable(message.to);
    }
  }
}

void Transport::Impl::RunSender(std::shared_ptr<Peer> peer) {
  int backoff_ms = kInitialBackoffMs;
  bool healthy = true;  // for logging transitions only
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<cairnpb::Peer::Stub> stub;
  std::unique_ptr<grpc::ClientWriter<cairnpb::RaftFrame>> writer;
  cairnpb::StreamAck ack;
  bool header_sent = false;
  for (;;) {
    cairnpb::RaftFrame frame;
    size_t count = 0;
    bool open = false;
    {
      absl::MutexLock lock(&peer->mu);
      while (!peer->stop && peer->queue.empty()) peer->cv.Wait(&peer->mu);
      if (peer->stop) break;
      // Batch what is queued into one frame, at least one message and at most frame_cap_bytes_.
      size_t bytes = 0;
      while (!peer->queue.empty() &&
             (count == 0 || bytes + peer->queue.front().size() <= frame_cap_bytes_)) {
        bytes += peer->queue.front().size();
        peer->queued_bytes -= peer->queue.front().size();
        frame.add_messages(std::move(peer->queue.front()));
        peer->queue.pop_front();
        ++count;
      }
      if (writer == nullptr) {
        context = std::make_unique<grpc::ClientContext>();
        peer->stream_context = context.get();
        open = true;
      }
    }
    bool ok = true;
    if (open) {
      std::shared_ptr<grpc::Channel> channel = PeerChannel(peer.get());
      if (channel == nullptr) {
        ok = false;
      } else {
        stub = cairnpb::Peer::NewStub(channel);
        // Blocks until the stream is open or fails (fails fast when the peer refuses
        // connections); Stop cancels `context` to cut it short.
        writer = stub->Raft(context.get(), &ack);
        header_sent = false;
      }
    }
    if (ok) {
      if (!header_sent) *frame.mutable_header() = Header(peer->id);
      ok = writer->Write(frame);
    }
    if (ok) {
      header_sent = true;
      sent_ += count;
      backoff_ms = kInitialBackoffMs;
      if (!healthy) {
        healthy = true;
        CAIRN_LOG(kInfo, "transport") << "stream to peer " << IdHex(peer->id) << " restored";
      }
      continue;
    }

    // The stream is broken: drop what it carried and what is queued (raft retransmits, and stale
    // heartbeats are not worth delivering late), report the peer and back off.
    grpc::Status status(grpc::StatusCode::UNAVAILABLE, "peer has no usable URL");
    if (writer != nullptr) status = writer->Finish();
    writer.reset();
    stub.reset();
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
        status.error_message() == kMemberRemovedMessage) {
      handler_->OnRemovedFromCluster();
    }
    size_t lost = count;
    {
      absl::MutexLock lock(&peer->mu);
      peer->stream_context = nullptr;
      if (peer->stop) {  // cancelled by RemovePeer or Stop: not a failure of the peer
        dropped_ += count;
        context.reset();
        return;
      }
      lost += peer->queue.size();
      peer->queue.clear();
      peer->queued_bytes = 0;
      // With several URLs, try the next one.
      if (peer->urls.size() > 1) {
        peer->url_index = (peer->url_index + 1) % peer->urls.size();
        peer->channel.reset();
      }
    }
    context.reset();
    dropped_ += lost;
    if (healthy) {
      healthy = false;
      CAIRN_LOG(kWarn, "transport")
          << "stream to peer " << IdHex(peer->id) << " failed: code=" << status.error_code() << " "
          << status.error_message() << " dropped=" << lost;
    }
    ReportUnreachable(peer->id);
    {
      absl::MutexLock lock(&peer->mu);
      // Real time, like the gRPC deadlines: the backoff paces reconnects over the real network.
      absl::Time until = absl::Now() + absl::Milliseconds(backoff_ms);
      while (!peer->stop && !peer->cv.WaitWithDeadline(&peer->mu, until)) {
      }
    }
    backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
  }
  if (writer != nullptr) {
    context->TryCancel();
    writer->Finish();
  }
  absl::MutexLock lock(&peer->mu);
  peer->stream_context = nullptr;
}

void Transport::Impl::StartSnapshotSend(raft::Message message) {
  uint64_t to = message.to;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    // Reap finished sends (their threads are exiting or gone).
    for (auto it = snapshot_sends_.begin(); it != snapshot_sends_.end();) {
      if ((*it)->done) {
        (*it)->thread.join();
        it = snapshot_sends_.erase(it);
      } else {
        ++it;
      }
    }
    auto it = peers_.find(to);
    if (it != peers_.end() && snapshot_sends_in_flight_ < options_.max_concurrent_snapshot_sends) {
      ++snapshot_sends_in_flight_;
      auto send = std::make_unique<SnapshotSend>();
      SnapshotSend* raw = send.get();
      std::shared_ptr<Peer> peer = it->second;
      send->thread = std::thread([this, raw, peer, m = std::move(message)]() mutable {
        RunSnapshotSend(raw, std::move(peer), std::move(m));
      });
      snapshot_sends_.push_back(std::move(send));
      return;
    }
  }
  CAIRN_LOG(kWarn, "transport") << "snapshot to peer " << IdHex(to)
                                << " refused: unknown peer or too many snapshot sends";
  ReportSnapshotSent(to, false);
}

void Transport::Impl::RunSnapshotSend(SnapshotSend* send, std::shared_ptr<Peer> peer,
                                      raft::Message message) {
  uint64_t to = message.to;
  grpc::ClientContext context;
  bool cancelled;
  {
    absl::MutexLock lock(&mu_);
    cancelled = stopping_;
    send->context = &context;
  }
  bool ok = !cancelled && SendSnapshot(peer.get(), std::move(message), &context);
  {
    absl::MutexLock lock(&mu_);
    send->context = nullptr;
    send->done = true;
    --snapshot_sends_in_flight_;
  }
  if (ok) ++snapshots_sent_;
  ReportSnapshotSent(to, ok);
}

bool Transport::Impl::SendSnapshot(Peer* peer, raft::Message message,
                                   grpc::ClientContext* context) {
  const uint64_t to = message.to;
  const uint64_t index = message.snapshot.has_value() ? message.snapshot->metadata.index : 0;
  std::shared_ptr<grpc::Channel> channel = PeerChannel(peer);
  if (channel == nullptr) return false;
  auto stub = cairnpb::Peer::NewStub(channel);
  cairnpb::SnapshotAck ack;
  auto writer = stub->Snapshot(context, &ack);

  if (message.snapshot.has_value()) message.snapshot->data.clear();
  cairnpb::SnapshotChunk first;
  *first.mutable_header() = Header(to);
  first.set_message(raft::EncodeMessage(message));
  bool broken = !writer->Write(first);

  const size_t chunk_bytes = std::max<size_t>(1, options_.snapshot_chunk_bytes);
  uint32_t crc = 0;
  uint64_t total = 0;
  std::string pending;
  auto sink = [&](std::string_view piece) -> bool {
    if (broken) return false;
    crc = base::crc32c::Extend(crc, piece.data(), piece.size());
    total += piece.size();
    while (!piece.empty()) {
      size_t take = std::min(piece.size(), chunk_bytes - pending.size());
      pending.append(piece.data(), take);
      piece.remove_prefix(take);
      if (pending.size() == chunk_bytes) {
        cairnpb::SnapshotChunk chunk;
        chunk.set_data(std::move(pending));
        pending.clear();
        if (!writer->Write(chunk)) {
          broken = true;
          return false;
        }
      }
    }
    return true;
  };
  absl::Status status =
      broken ? absl::UnavailableError("stream broken") : handler_->WriteSnapshot(sink);
  if (status.ok() && broken) status = absl::UnavailableError("stream broken");
  if (!status.ok()) {
    // Cancel so the receiver sees a broken stream and discards what it has.
    context->TryCancel();
    grpc::Status finish = writer->Finish();
    CAIRN_LOG(kWarn, "transport") << "snapshot " << index << " to peer " << IdHex(to)
                                  << " failed: " << status.message()
                                  << " (stream: " << finish.error_message() << ")";
    return false;
  }
  cairnpb::SnapshotChunk last;
  last.set_data(std::move(pending));
  last.set_last(true);
  last.set_crc32c(crc);
  writer->Write(last);
  writer->WritesDone();
  grpc::Status finish = writer->Finish();
  if (!finish.ok()) {
    CAIRN_LOG(kWarn, "transport") << "snapshot " << index << " to peer " << IdHex(to)
                                  << " refused: code=" << finish.error_code() << " "
                                  << finish.error_message();
    return false;
  }
  CAIRN_LOG(kInfo, "transport") << "sent snapshot " << index << " to peer " << IdHex(to)
                                << " bytes=" << total;
  return true;
}

void Transport::Impl::ReportUnreachable(uint64_t id) {
  absl::MutexLock lock(&report_mu_);
  unreachable_.insert(id);
  report_cv_.Signal();
}

void Transport::Impl::ReportSnapshotSent(uint64_t id, bool ok) {
  absl::MutexLock lock(&report_mu_);
  snapshot_results_.emplace_back(id, ok);
  report_cv_.Signal();
}

void Transport::Impl::RunReporter() {
  for (;;) {
    std::set<uint64_t> unreachable;
    std::vector<std::pair<uint64_t, bool>> results;
    {
      absl::MutexLock lock(&report_mu_);
      while (!report_stop_ && unreachable_.empty() && snapshot_results_.empty()) {
        report_cv_.Wait(&report_mu_);
      }
      if (report_stop_) return;
      unreachable.swap(unreachable_);
      results.swap(snapshot_results_);
    }
    for (uint64_t id : unreachable) handler_->OnUnreachable(id);
    for (const auto& [id, ok] : results) handler_->OnSnapshotSent(id, ok);
  }
}

template <typename Request, typename Response>
void Transport::Impl::CallPeer(uint64_t peer_id, AsyncMethod<Request, Response> method,
                               Request request, int64_t timeout_ms,
                               std::function<void(absl::StatusOr<Response>)> done) {
  std::shared_ptr<Peer> peer = FindPeer(peer_id);
  if (peer == nullptr) return done(absl::UnavailableError("unknown peer " + IdHex(peer_id)));
  std::shared_ptr<grpc::Channel> channel = PeerChannel(peer.get());
  if (channel == nullptr) {
    return done(absl::UnavailableError("peer " + IdHex(peer_id) + " has no URL"));
  }
  // Owned by the completion callback, which gRPC destroys once it has run.
  struct Call {
    grpc::ClientContext context;
    Request request;
    Response response;
    std::unique_ptr<cairnpb::Peer::Stub> stub;
  };
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  *call->request.mutable_header() = Header(peer_id);
  const int64_t ms = std::clamp<int64_t>(timeout_ms, 1, options_.forward_timeout_ms);
  call->context.set_deadline(DeadlineAfterMs(static_cast<int>(ms)));
  call->stub = cairnpb::Peer::NewStub(channel);
  {
    absl::MutexLock lock(&calls_mu_);
    if (!calls_closed_) {
      outgoing_.insert(&call->context);
    } else {
      call = nullptr;
    }
  }
  if (call == nullptr) return done(absl::UnavailableError("transport stopped"));
  Call* raw = call.get();
  ((*raw->stub->async()).*method)(
      &raw->context, &raw->request, &raw->response,
      [this, call = std::move(call), done = std::move(done)](grpc::Status status) {
        if (status.ok()) {
          done(std::move(call->response));
        } else {
          done(FromGrpc(status));
        }
        absl::MutexLock lock(&calls_mu_);
        outgoing_.erase(&call->context);
        calls_cv_.SignalAll();
      });
}

void Transport::Impl::StopCalls() {
  {
    absl::MutexLock lock(&calls_mu_);
    calls_closed_ = true;
    for (grpc::ClientContext* context : outgoing_) context->TryCancel();
    while (!outgoing_.empty()) calls_cv_.Wait(&calls_mu_);
  }
  absl::MutexLock lock(&incoming_->mu);
  incoming_->closed = true;
  for (const auto& in : incoming_->pending) {
    in->finished = true;
    in->reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "transport stopped"));
  }
  incoming_->pending.clear();
}

grpc::Status Transport::Impl::Raft(grpc::ServerContext* /*context*/,
                                   grpc::ServerReader<cairnpb::RaftFrame>* reader,
                                   cairnpb::StreamAck* /*response*/) {
  cairnpb::RaftFrame frame;
  bool first = true;
  uint64_t from = 0;
  while (reader->Read(&frame)) {
    if (first && !frame.has_header()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "first frame has no header");
    }
    if (frame.has_header()) {
      grpc::Status status = CheckHeader(frame.header());
      if (!status.ok()) return status;
      from = frame.header().from();
    }
    first = false;
    if (from != 0 && handler_->IsRemovedMember(from)) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, kMemberRemovedMessage);
    }
    for (const std::string& bytes : frame.messages()) {
      absl::StatusOr<raft::Message> message = raft::DecodeMessage(bytes);
      if (!message.ok()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "bad raft message: " + std::string(message.status().message()));
      }
      if (message->type == raft::MessageType::kSnap || raft::IsLocalMessage(message->type)) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "raft stream carries a " +
                                std::string(raft::MessageTypeName(message->type)) + " message");
      }
      ++received_;
      handler_->OnRaftMessage(*std::move(message));
    }
  }
  return grpc::Status::OK;
}

grpc::Status Transport::Impl::Snapshot(grpc::ServerContext* /*context*/,
                                       grpc::ServerReader<cairnpb::SnapshotChunk>* reader,
                                       cairnpb::SnapshotAck* /*response*/) {
  cairnpb::SnapshotChunk chunk;
  if (!reader->Read(&chunk)) {
    return grpc::Status(grpc::StatusCode::ABORTED, "snapshot stream ended before its first chunk");
  }
  if (!chunk.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "first snapshot chunk has no header");
  }
  grpc::Status checked = CheckHeader(chunk.header());
  if (!checked.ok()) return checked;
  absl::StatusOr<raft::Message> message = raft::DecodeMessage(chunk.message());
  if (!message.ok() || message->type != raft::MessageType::kSnap ||
      !message->snapshot.has_value()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "first snapshot chunk does not carry a kSnap message");
  }
  message->snapshot->data.clear();
  const uint64_t from = chunk.header().from();
  const raft::SnapshotMetadata& metadata = message->snapshot->metadata;

  std::string tmp_path = absl::StrCat(snap_dir_, "/recv-", from, "-", metadata.index, ".tmp");
  absl::StatusOr<std::unique_ptr<base::WritableFile>> created =
      options_.env->NewWritableFile(tmp_path);
  if (!created.ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "cannot create " + tmp_path + ": " +
                                                        std::string(created.status().message()));
  }
  SnapshotFile file(options_.env, std::move(*created), tmp_path);
  uint32_t crc = 0;
  uint64_t total = 0;
  bool complete = false;
  for (;;) {
    const std::string& data = chunk.data();
    if (!data.empty()) {
      if (absl::Status s = file.Append(data); !s.ok()) {
        return grpc::Status(grpc::StatusCode::INTERNAL,
                            "cannot write " + tmp_path + ": " + std::string(s.message()));
      }
      crc = base::crc32c::Extend(crc, data.data(), data.size());
      total += data.size();
    }
    if (chunk.last()) {
      complete = true;
      break;
    }
    if (!reader->Read(&chunk)) break;
  }
  if (!complete) {
    CAIRN_LOG(kWarn, "transport") << "snapshot " << metadata.index << " from peer " << IdHex(from)
                                  << " broken off after " << total << " bytes; discarded";
    return grpc::Status(grpc::StatusCode::ABORTED, "snapshot stream broken before its last chunk");
  }
  if (crc != chunk.crc32c()) {
    CAIRN_LOG(kWarn, "transport") << "snapshot " << metadata.index << " from peer " << IdHex(from)
                                  << " has a bad checksum; discarded";
    return grpc::Status(grpc::StatusCode::DATA_LOSS, "snapshot checksum mismatch");
  }
  char name[64];
  std::snprintf(name, sizeof(name), "%016llx-%016llx.snap",
                static_cast<unsigned long long>(metadata.term),
                static_cast<unsigned long long>(metadata.index));
  std::string final_path = snap_dir_ + "/" + name;
  absl::Status kept = file.Keep(snap_dir_, final_path);
  if (!kept.ok()) return ToGrpc(kept);
  ++snapshots_received_;
  CAIRN_LOG(kInfo, "transport") << "received snapshot " << metadata.index << " from peer "
                                << IdHex(from) << " bytes=" << total;
  handler_->OnSnapshot(*std::move(message), std::move(final_path));
  return grpc::Status::OK;
}

grpc::Status Transport::Impl::Members(grpc::ServerContext* /*context*/,
                                      const cairnpb::MembersRequest* request,
                                      cairnpb::MembersResponse* response) {
  grpc::Status checked = CheckHeader(request->header());
  if (!checked.ok()) return checked;
  *response = handler_->OnMembers();
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* Transport::Impl::LeaseRenew(grpc::CallbackServerContext* context,
                                                      const cairnpb::LeaseRenewRequest* request,
                                                      cairnpb::LeaseRenewResponse* response) {
  return Answer<int64_t>(
      context, request->header(),
      [this, id = request->id()](std::function<void(absl::StatusOr<int64_t>)> done) {
        handler_->OnLeaseRenew(id, std::move(done));
      },
      [response](int64_t ttl) { response->set_ttl(ttl); });
}

grpc::ServerUnaryReactor* Transport::Impl::LeaseTimeToLive(
    grpc::CallbackServerContext* context, const cairnpb::LeaseTimeToLiveRequest* request,
    etcdserverpb::LeaseTimeToLiveResponse* response) {
  using Resp = etcdserverpb::LeaseTimeToLiveResponse;
  return Answer<Resp>(
      context, request->header(),
      [this, request](std::function<void(absl::StatusOr<Resp>)> done) {
        handler_->OnLeaseTimeToLive(request->request(), std::move(done));
      },
      [response](Resp r) { *response = std::move(r); });
}

grpc::ServerUnaryReactor* Transport::Impl::MemberPromote(
    grpc::CallbackServerContext* context, const cairnpb::MemberPromoteRequest* request,
    cairnpb::MemberPromoteResponse* /*response*/) {
  return Answer<bool>(
      context, request->header(),
      [this, id = request->id()](std::function<void(absl::StatusOr<bool>)> done) {
        handler_->OnMemberPromote(id, [done](absl::Status st) {
          if (!st.ok()) return done(st);
          done(true);
        });
      },
      [](bool) {});
}

template <typename T>
grpc::ServerUnaryReactor* Transport::Impl::Answer(
    grpc::CallbackServerContext* context, const cairnpb::PeerHeader& header,
    std::function<void(std::function<void(absl::StatusOr<T>)>)> ask, std::function<void(T)> fill) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status checked = CheckHeader(header);
  if (!checked.ok()) {
    reactor->Finish(checked);
    return reactor;
  }
  auto call = std::make_shared<IncomingCall>();
  call->reactor = reactor;
  std::shared_ptr<IncomingCalls> calls = incoming_;
  {
    absl::MutexLock lock(&calls->mu);
    if (calls->closed) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "transport stopped"));
      return reactor;
    }
    calls->pending.insert(call);
  }
  ask([calls, call, fill = std::move(fill)](absl::StatusOr<T> result) {
    absl::MutexLock lock(&calls->mu);
    if (call->finished) return;  // answered by Stop
    call->finished = true;
    if (result.ok()) fill(*std::move(result));
    call->reactor->Finish(result.ok() ? grpc::Status::OK : ToGrpc(result.status()));
    calls->pending.erase(call);
  });
  return reactor;
}

// Transport: the public face, forwarding to Impl.

absl::StatusOr<std::unique_ptr<Transport>> Transport::Start(
    const std::vector<std::string>& listen_urls, uint64_t cluster_id, uint64_t member_id,
    std::string snap_dir, Handler* handler, TransportOptions options) {
  if (handler == nullptr) return absl::InvalidArgumentError("transport needs a handler");
  if (absl::Status s = PrepareTls(listen_urls, "peer-", &options.tls); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(cluster_id, member_id, std::move(snap_dir), handler, options);
  absl::Status status = impl->StartServer(listen_urls);
  if (!status.ok()) return status;
  return std::unique_ptr<Transport>(new Transport(std::move(impl)));
}

Transport::Transport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Transport::~Transport() = default;

void Transport::SetClusterId(uint64_t cluster_id) { impl_->SetClusterId(cluster_id); }

std::vector<int> Transport::BoundPorts() const { return impl_->BoundPorts(); }

void Transport::AddPeer(uint64_t id, const std::vector<std::string>& urls) {
  impl_->AddPeer(id, urls);
}

void Transport::RemovePeer(uint64_t id) { impl_->RemovePeer(id); }

void Transport::Send(std::vector<raft::Message> messages) { impl_->Send(std::move(messages)); }

void Transport::LeaseRenew(uint64_t peer, int64_t id, int64_t timeout_ms, Reply<int64_t> done) {
  cairnpb::LeaseRenewRequest request;
  request.set_id(id);
  impl_->CallPeer<cairnpb::LeaseRenewRequest, cairnpb::LeaseRenewResponse>(
      peer, &cairnpb::Peer::Stub::async::LeaseRenew, std::move(request), timeout_ms,
      [done = std::move(done)](absl::StatusOr<cairnpb::LeaseRenewResponse> r) {
        if (!r.ok()) return done(r.status());
        done(r->ttl());
      });
}

void Transport::LeaseTimeToLive(uint64_t peer, const etcdserverpb::LeaseTimeToLiveRequest& request,
                                int64_t timeout_ms,
                                Reply<etcdserverpb::LeaseTimeToLiveResponse> done) {
  cairnpb::LeaseTimeToLiveRequest forwarded;
  *forwarded.mutable_request() = request;
  impl_->CallPeer<cairnpb::LeaseTimeToLiveRequest, etcdserverpb::LeaseTimeToLiveResponse>(
      peer, &cairnpb::Peer::Stub::async::LeaseTimeToLive, std::move(forwarded), timeout_ms,
      std::move(done));
}

void Transport::MemberPromote(uint64_t peer, uint64_t id, int64_t timeout_ms,
                              std::function<void(absl::Status)> done) {
  cairnpb::MemberPromoteRequest request;
  request.set_id(id);
  impl_->CallPeer<cairnpb::MemberPromoteRequest, cairnpb::MemberPromoteResponse>(
      peer, &cairnpb::Peer::Stub::async::MemberPromote, std::move(request), timeout_ms,
      [done = std::move(done)](absl::StatusOr<cairnpb::MemberPromoteResponse> r) {
        done(r.status());
      });
}

void Transport::Members(uint64_t peer, int64_t timeout_ms, Reply<cairnpb::MembersResponse> done) {
  impl_->CallPeer<cairnpb::MembersRequest, cairnpb::MembersResponse>(
      peer, &cairnpb::Peer::Stub::async::Members, cairnpb::MembersRequest(), timeout_ms,
      std::move(done));
}

absl::StatusOr<cairnpb::MembersResponse> Transport::FetchMembers(
    const std::vector<std::string>& peer_urls, int timeout_ms, TlsConfig tls) {
  if (absl::Status s = PrepareTls(peer_urls, "peer-", &tls); !s.ok()) return s;
  absl::Status last = absl::InvalidArgumentError("no peer URLs to ask for the members");
  for (const std::string& url : peer_urls) {
    auto target = base::HostPortOfUrl(url);
    if (!target.ok()) {
      last = target.status();
      continue;
    }
    auto channel = NewChannel(url, *target, INT_MAX, tls);
    grpc::ClientContext context;
    context.set_deadline(DeadlineAfterMs(timeout_ms));
    cairnpb::MembersRequest request;  // cluster_id 0: we do not know it yet
    cairnpb::MembersResponse response;
    grpc::Status status = cairnpb::Peer::NewStub(channel)->Members(&context, request, &response);
    if (status.ok()) return response;
    last = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        url + ": " + status.error_message());
  }
  return last;
}

Transport::Stats Transport::stats() const { return impl_->stats(); }

}  // namespace cairn::transport
