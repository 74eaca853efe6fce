#include "cairn/maintenance.h"

#include <cstdio>
#include <fstream>
#include <thread>

#include "cairn/errors.h"
#include "client/src/core.h"
#include "client/src/sha256.h"

namespace cairn {

using internal::CopyHeader;
using internal::RpcClass;
using internal::StartUnary;

Future<StatusResponse> MaintenanceClient::StatusAsync(const std::string& endpoint,
                                                      const CallOptions& call) const {
  return StartUnary<etcdserverpb::StatusRequest, etcdserverpb::StatusResponse, StatusResponse>(
      core_, RpcClass::kRead, call, etcdserverpb::StatusRequest(), CAIRN_RPC(maintenance, Status),
      [](etcdserverpb::StatusResponse& r) -> absl::StatusOr<StatusResponse> {
        StatusResponse out;
        CopyHeader(r.header(), &out.header);
        out.version = r.version();
        out.db_size = r.dbsize();
        out.db_size_in_use = r.dbsizeinuse();
        out.leader = r.leader();
        out.raft_index = r.raftindex();
        out.raft_term = r.raftterm();
        out.raft_applied_index = r.raftappliedindex();
        out.errors.assign(r.errors().begin(), r.errors().end());
        out.is_learner = r.islearner();
        return out;
      },
      endpoint);
}

Future<AlarmResponse> MaintenanceClient::AlarmAsync(AlarmAction action, MemberId member_id,
                                                    AlarmType alarm,
                                                    const CallOptions& call) const {
  etcdserverpb::AlarmRequest req;
  req.set_action(static_cast<etcdserverpb::AlarmRequest::AlarmAction>(action));
  req.set_memberid(member_id);
  req.set_alarm(static_cast<etcdserverpb::AlarmType>(alarm));
  // GET is a read; activating/deactivating an alarm is idempotent, as etcd's client treats it.
  return StartUnary<etcdserverpb::AlarmRequest, etcdserverpb::AlarmResponse, AlarmResponse>(
      core_, RpcClass::kRead, call, std::move(req), CAIRN_RPC(maintenance, Alarm),
      [](etcdserverpb::AlarmResponse& r) -> absl::StatusOr<AlarmResponse> {
        AlarmResponse out;
        CopyHeader(r.header(), &out.header);
        for (const auto& a : r.alarms()) {
          out.alarms.push_back({a.memberid(), static_cast<AlarmType>(a.alarm())});
        }
        return out;
      });
}

Future<EmptyResponse> MaintenanceClient::DefragmentAsync(const std::string& endpoint,
                                                         const CallOptions& call) const {
  return StartUnary<etcdserverpb::DefragmentRequest, etcdserverpb::DefragmentResponse,
                    EmptyResponse>(
      core_, RpcClass::kRead, call, etcdserverpb::DefragmentRequest(),
      CAIRN_RPC(maintenance, Defragment),
      [](etcdserverpb::DefragmentResponse& r) -> absl::StatusOr<EmptyResponse> {
        EmptyResponse out;
        CopyHeader(r.header(), &out.header);
        return out;
      },
      endpoint);
}

Future<HashResponse> MaintenanceClient::HashAsync(const std::string& endpoint,
                                                  const CallOptions& call) const {
  return StartUnary<etcdserverpb::HashRequest, etcdserverpb::HashResponse, HashResponse>(
      core_, RpcClass::kRead, call, etcdserverpb::HashRequest(), CAIRN_RPC(maintenance, Hash),
      [](etcdserverpb::HashResponse& r) -> absl::StatusOr<HashResponse> {
        HashResponse out;
        CopyHeader(r.header(), &out.header);
        out.hash = r.hash();
        return out;
      },
      endpoint);
}

Future<HashKvResponse> MaintenanceClient::HashKvAsync(const std::string& endpoint,
                                                      Revision revision,
                                                      const CallOptions& call) const {
  etcdserverpb::HashKVRequest req;
  req.set_revision(revision);
  return StartUnary<etcdserverpb::HashKVRequest, etcdserverpb::HashKVResponse, HashKvResponse>(
      core_, RpcClass::kRead, call, std::move(req), CAIRN_RPC(maintenance, HashKV),
      [](etcdserverpb::HashKVResponse& r) -> absl::StatusOr<HashKvResponse> {
        HashKvResponse out;
        CopyHeader(r.header(), &out.header);
        out.hash = r.hash();
        out.compact_revision = r.compact_revision();
        return out;
      },
      endpoint);
}

Future<EmptyResponse> MaintenanceClient::MoveLeaderAsync(MemberId target,
                                                         const std::string& endpoint,
                                                         const CallOptions& call) const {
  etcdserverpb::MoveLeaderRequest req;
  req.set_targetid(target);
  return StartUnary<etcdserverpb::MoveLeaderRequest, etcdserverpb::MoveLeaderResponse,
                    EmptyResponse>(
      core_, RpcClass::kRead, call, std::move(req), CAIRN_RPC(maintenance, MoveLeader),
      [](etcdserverpb::MoveLeaderResponse& r) -> absl::StatusOr<EmptyResponse> {
        EmptyResponse out;
        CopyHeader(r.header(), &out.header);
        return out;
      },
      endpoint);
}

namespace {

absl::StatusOr<SnapshotResult> SnapshotOnce(internal::Core& core, internal::Endpoint& ep,
                                            const std::string& path, Clock::time_point deadline,
                                            const CancelToken& cancel) {
  grpc::ClientContext ctx;
  core.PrepareContext(&ctx, deadline, false);
  uint64_t reg = cancel.Register([&ctx] { ctx.TryCancel(); });
  std::string part = path + ".part";
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  if (!out) {
    cancel.Unregister(reg);
    return absl::InvalidArgumentError("cannot write " + part);
  }
  auto reader = ep.maintenance->Snapshot(&ctx, etcdserverpb::SnapshotRequest());
  etcdserverpb::SnapshotResponse chunk;
  internal::Sha256 sha;
  // The last 32 bytes of the stream are the checksum, so hash with a 32-byte lag.
  std::string tail;
  uint64_t total = 0;
  while (reader->Read(&chunk)) {
    const std::string& blob = chunk.blob();
    out.write(blob.data(), static_cast<std::streamsize>(blob.size()));
    total += blob.size();
    tail += blob;
    if (tail.size() > 32) {
      sha.Update(std::string_view(tail).substr(0, tail.size() - 32));
      tail.erase(0, tail.size() - 32);
    }
  }
  absl::Status st = internal::FromGrpc(reader->Finish());
  cancel.Unregister(reg);
  out.close();
  if (!st.ok() || !out) {
    std::remove(part.c_str());
    if (st.ok()) st = absl::DataLossError("cannot write " + part);
    return st;
  }
  if (tail.size() != 32) {
    std::remove(part.c_str());
    return MakeError(ErrorKind::kChecksumMismatch, "snapshot shorter than its checksum");
  }
  auto digest = sha.Final();
  if (std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()) != tail) {
    std::remove(part.c_str());
    return MakeError(ErrorKind::kChecksumMismatch, "snapshot sha256 does not match");
  }
  if (std::rename(part.c_str(), path.c_str()) != 0) {
    std::remove(part.c_str());
    return absl::InternalError("cannot rename " + part + " to " + path);
  }
  SnapshotResult result;
  result.bytes = total;
  result.sha256_hex = internal::Sha256::Hex(digest);
  return result;
}

}  // namespace

absl::StatusOr<SnapshotResult> MaintenanceClient::Snapshot(const std::string& path,
                                                           const std::string& endpoint,
                                                           const CallOptions& call) const {
  // The transfer runs on a helper thread so that a fiber caller only suspends its fiber.
  auto core = core_;
  auto deadline = core->DeadlineFor(call);
  auto done = std::make_shared<internal::Notification>();
  auto result = std::make_shared<absl::StatusOr<SnapshotResult>>(absl::UnknownError("unset"));
  std::thread worker([core, deadline, done, result, path, endpoint, call] {
    absl::StatusOr<SnapshotResult> r = absl::UnavailableError("no endpoint");
    for (int attempt = 0; Clock::now() < deadline && !core->closed(); ++attempt) {
      auto ep = endpoint.empty() ? core->Current() : core->EndpointFor(endpoint);
      std::string token = core->token();
      r = SnapshotOnce(*core, *ep, path, deadline, call.cancel);
      if (r.ok()) break;
      if (internal::IsAuthError(r.status()) && attempt == 0) {
        (void)core->RefreshToken(token, deadline);
        continue;
      }
      if (r.status().code() != absl::StatusCode::kUnavailable || !endpoint.empty()) break;
      core->ReportFailure(ep);
      std::this_thread::sleep_until(std::min(deadline, Clock::now() + core->Backoff(attempt)));
    }
    *result = std::move(r);
    done->Set();
  });
  done->Wait();
  worker.join();
  return std::move(*result);
}

}  // namespace cairn
