#include "cairn/cluster.h"

#include "client/src/core.h"

namespace cairn {

using internal::CopyHeader;
using internal::RpcClass;
using internal::StartUnary;

namespace {

Member ToMember(const etcdserverpb::Member& m) {
  Member out;
  out.id = m.id();
  out.name = m.name();
  out.peer_urls.assign(m.peerurls().begin(), m.peerurls().end());
  out.client_urls.assign(m.clienturls().begin(), m.clienturls().end());
  out.is_learner = m.islearner();
  return out;
}

template <typename R>
std::vector<Member> ToMembers(const R& r) {
  std::vector<Member> out;
  for (const auto& m : r.members()) out.push_back(ToMember(m));
  return out;
}

}  // namespace

Future<MemberListResponse> ClusterClient::MemberListAsync(const CallOptions& call) const {
  return StartUnary<etcdserverpb::MemberListRequest, etcdserverpb::MemberListResponse,
                    MemberListResponse>(
      core_, RpcClass::kRead, call, etcdserverpb::MemberListRequest(),
      CAIRN_RPC(cluster, MemberList),
      [](etcdserverpb::MemberListResponse& r) -> absl::StatusOr<MemberListResponse> {
        MemberListResponse out;
        CopyHeader(r.header(), &out.header);
        out.members = ToMembers(r);
        return out;
      });
}

Future<MemberAddResponse> ClusterClient::MemberAddAsync(std::vector<std::string> peer_urls,
                                                        bool is_learner,
                                                        const CallOptions& call) const {
  etcdserverpb::MemberAddRequest req;
  for (auto& u : peer_urls) req.add_peerurls(u);
  req.set_islearner(is_learner);
  return StartUnary<etcdserverpb::MemberAddRequest, etcdserverpb::MemberAddResponse,
                    MemberAddResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(cluster, MemberAdd),
      [](etcdserverpb::MemberAddResponse& r) -> absl::StatusOr<MemberAddResponse> {
        MemberAddResponse out;
        CopyHeader(r.header(), &out.header);
        out.member = ToMember(r.member());
        out.members = ToMembers(r);
        return out;
      });
}

Future<MemberChangeResponse> ClusterClient::MemberRemoveAsync(MemberId id,
                                                              const CallOptions& call) const {
  etcdserverpb::MemberRemoveRequest req;
  req.set_id(id);
  return StartUnary<etcdserverpb::MemberRemoveRequest, etcdserverpb::MemberRemoveResponse,
                    MemberChangeResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(cluster, MemberRemove),
      [](etcdserverpb::MemberRemoveResponse& r) -> absl::StatusOr<MemberChangeResponse> {
        MemberChangeResponse out;
        CopyHeader(r.header(), &out.header);
        out.members = ToMembers(r);
        return out;
      });
}

Future<MemberChangeResponse> ClusterClient::MemberUpdateAsync(MemberId id,
                                                              std::vector<std::string> peer_urls,
                                                              const CallOptions& call) const {
  etcdserverpb::MemberUpdateRequest req;
  req.set_id(id);
  for (auto& u : peer_urls) req.add_peerurls(u);
  return StartUnary<etcdserverpb::MemberUpdateRequest, etcdserverpb::MemberUpdateResponse,
                    MemberChangeResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(cluster, MemberUpdate),
      [](etcdserverpb::MemberUpdateResponse& r) -> absl::StatusOr<MemberChangeResponse> {
        MemberChangeResponse out;
        CopyHeader(r.header(), &out.header);
        out.members = ToMembers(r);
        return out;
      });
}

Future<MemberChangeResponse> ClusterClient::MemberPromoteAsync(MemberId id,
                                                               const CallOptions& call) const {
  etcdserverpb::MemberPromoteRequest req;
  req.set_id(id);
  return StartUnary<etcdserverpb::MemberPromoteRequest, etcdserverpb::MemberPromoteResponse,
                    MemberChangeResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(cluster, MemberPromote),
      [](etcdserverpb::MemberPromoteResponse& r) -> absl::StatusOr<MemberChangeResponse> {
        MemberChangeResponse out;
        CopyHeader(r.header(), &out.header);
        out.members = ToMembers(r);
        return out;
      });
}

}  // namespace cairn
