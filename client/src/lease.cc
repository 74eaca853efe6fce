#include "cairn/lease.h"

#include "client/src/core.h"
#include "client/src/lease_keeper.h"

namespace cairn {

using internal::CopyHeader;
using internal::RpcClass;
using internal::StartUnary;

// Lease calls are retried like reads, as in etcd's Go client: Grant with a server-chosen id may
// then grant a second lease (which expires unused); Revoke and TimeToLive are idempotent.
Future<LeaseGrantResponse> LeaseClient::GrantAsync(int64_t ttl_seconds, LeaseId id,
                                                   const CallOptions& call) const {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  req.set_id(id);
  return StartUnary<etcdserverpb::LeaseGrantRequest, etcdserverpb::LeaseGrantResponse,
                    LeaseGrantResponse>(
      core_, RpcClass::kRead, call, std::move(req), CAIRN_RPC(lease, LeaseGrant),
      [](etcdserverpb::LeaseGrantResponse& r) -> absl::StatusOr<LeaseGrantResponse> {
        if (!r.error().empty()) return absl::UnknownError(r.error());
        LeaseGrantResponse out;
        CopyHeader(r.header(), &out.header);
        out.id = r.id();
        out.ttl_seconds = r.ttl();
        return out;
      });
}

Future<LeaseRevokeResponse> LeaseClient::RevokeAsync(LeaseId id, const CallOptions& call) const {
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(id);
  return StartUnary<etcdserverpb::LeaseRevokeRequest, etcdserverpb::LeaseRevokeResponse,
                    LeaseRevokeResponse>(
      core_, RpcClass::kRead, call, std::move(req), CAIRN_RPC(lease, LeaseRevoke),
      [](etcdserverpb::LeaseRevokeResponse& r) -> absl::StatusOr<LeaseRevokeResponse> {
        LeaseRevokeResponse out;
        CopyHeader(r.header(), &out.header);
        return out;
      });
}

Future<LeaseTimeToLiveResponse> LeaseClient::TimeToLiveAsync(LeaseId id, bool keys,
                                                             const CallOptions& call) const {
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  req.set_keys(keys);
  auto core = core_;
  return StartUnary<etcdserverpb::LeaseTimeToLiveRequest, etcdserverpb::LeaseTimeToLiveResponse,
                    LeaseTimeToLiveResponse>(
      core_, RpcClass::kRead, call, std::move(req), CAIRN_RPC(lease, LeaseTimeToLive),
      [core](etcdserverpb::LeaseTimeToLiveResponse& r) -> absl::StatusOr<LeaseTimeToLiveResponse> {
        LeaseTimeToLiveResponse out;
        CopyHeader(r.header(), &out.header);
        out.id = r.id();
        out.ttl_seconds = r.ttl();
        out.granted_ttl_seconds = r.grantedttl();
        for (const auto& k : r.keys()) out.keys.push_back(core->StripPrefix(k));
        return out;
      });
}

Future<LeaseLeasesResponse> LeaseClient::LeasesAsync(const CallOptions& call) const {
  return StartUnary<etcdserverpb::LeaseLeasesRequest, etcdserverpb::LeaseLeasesResponse,
                    LeaseLeasesResponse>(
      core_, RpcClass::kRead, call, etcdserverpb::LeaseLeasesRequest(),
      CAIRN_RPC(lease, LeaseLeases),
      [](etcdserverpb::LeaseLeasesResponse& r) -> absl::StatusOr<LeaseLeasesResponse> {
        LeaseLeasesResponse out;
        CopyHeader(r.header(), &out.header);
        for (const auto& l : r.leases()) out.ids.push_back(l.id());
        return out;
      });
}

Future<LeaseKeepAliveResponse> LeaseClient::KeepAliveOnceAsync(LeaseId id,
                                                               const CallOptions& call) const {
  // One round trip on a short-lived stream, on a helper thread bounded by the call's deadline.
  Promise<LeaseKeepAliveResponse> promise;
  auto core = core_;
  auto deadline = core->DeadlineFor(call);
  CancelToken cancel = call.cancel;
  std::thread([core, promise, id, deadline, cancel] {
    absl::Status last = absl::UnavailableError("no endpoint");
    for (int attempt = 0; Clock::now() < deadline && !core->closed(); ++attempt) {
      if (cancel.canceled()) {
        promise.Set(absl::CancelledError("call canceled"));
        return;
      }
      auto ep = core->Current();
      grpc::ClientContext ctx;
      std::string token = core->PrepareContext(&ctx, deadline, false);
      uint64_t reg = cancel.Register([&ctx] { ctx.TryCancel(); });
      auto stream = ep->lease->LeaseKeepAlive(&ctx);
      etcdserverpb::LeaseKeepAliveRequest req;
      req.set_id(id);
      etcdserverpb::LeaseKeepAliveResponse resp;
      bool ok = stream->Write(req) && stream->Read(&resp);
      ctx.TryCancel();
      absl::Status st = internal::FromGrpc(stream->Finish());
      cancel.Unregister(reg);
      if (ok) {
        if (resp.ttl() <= 0) {
          promise.Set(absl::NotFoundError("etcdserver: requested lease not found"));
          return;
        }
        LeaseKeepAliveResponse out;
        CopyHeader(resp.header(), &out.header);
        out.id = resp.id();
        out.ttl_seconds = resp.ttl();
        promise.Set(out);
        return;
      }
      last = st;
      if (internal::IsAuthError(st)) {
        (void)core->RefreshToken(token, deadline);
        continue;
      }
      if (st.code() != absl::StatusCode::kUnavailable &&
          st.code() != absl::StatusCode::kCancelled) {
        promise.Set(st);
        return;
      }
      core->ReportFailure(ep);
      auto wake = std::min(deadline, Clock::now() + core->Backoff(attempt));
      std::this_thread::sleep_until(wake);  // retry backoff
    }
    promise.Set(absl::DeadlineExceededError(
        "deadline exceeded (last error: " + std::string(last.message()) + ")"));
  }).detach();
  return promise.future();
}

std::unique_ptr<LeaseKeepAlive> LeaseClient::KeepAlive(LeaseId id, KeepAliveOptions opts) const {
  return core_->lease_keeper().Add(id, std::move(opts));
}

}  // namespace cairn
