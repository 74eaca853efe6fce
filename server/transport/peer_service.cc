// The receiving side of the peer transport: the cairnpb.Peer service (raft streams, snapshot
// streams, membership, forwarded lease and promote calls, and HashKV for the corruption check). See
// transport_impl.h.
#include "server/transport/transport_impl.h"

namespace cairn::transport {

namespace {

// Codes are numerically equal in gRPC and absl; messages pass through unchanged so the etcd error
// strings of a forwarded call reach the follower's client verbatim.
grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
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

grpc::ServerUnaryReactor* Transport::Impl::HashKV(grpc::CallbackServerContext* context,
                                                  const cairnpb::HashKVRequest* request,
                                                  etcdserverpb::HashKVResponse* response) {
  using Resp = etcdserverpb::HashKVResponse;
  return Answer<Resp>(
      context, request->header(),
      [this, revision = request->revision()](std::function<void(absl::StatusOr<Resp>)> done) {
        handler_->OnHashKV(revision, std::move(done));
      },
      [response](Resp r) { *response = std::move(r); });
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

}  // namespace cairn::transport
