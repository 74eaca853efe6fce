#include "server/transport/transport_impl.h"

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

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// gRPC deadlines are absolute times that gRPC enforces on its own real clock, so they come from
// the real system clock, not from an injected base::Clock (allowed in tests/deps/check_io.py).
std::chrono::system_clock::time_point DeadlineAfterMs(int ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
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

}  // namespace

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

void Transport::HashKV(uint64_t peer, int64_t revision, int64_t timeout_ms,
                       Reply<etcdserverpb::HashKVResponse> done) {
  cairnpb::HashKVRequest request;
  request.set_revision(revision);
  impl_->CallPeer<cairnpb::HashKVRequest, etcdserverpb::HashKVResponse>(
      peer, &cairnpb::Peer::Stub::async::HashKV, std::move(request), timeout_ms, std::move(done));
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
