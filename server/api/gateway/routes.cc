#include "server/api/gateway/routes.h"

#include <array>

namespace cairn::api::gateway {

namespace {

constexpr std::string_view kKv = "etcdserverpb.KV";
constexpr std::string_view kWatch = "etcdserverpb.Watch";
constexpr std::string_view kLease = "etcdserverpb.Lease";
constexpr std::string_view kCluster = "etcdserverpb.Cluster";
constexpr std::string_view kMaint = "etcdserverpb.Maintenance";
constexpr std::string_view kAuth = "etcdserverpb.Auth";
constexpr std::string_view kLock = "v3lockpb.Lock";
constexpr std::string_view kElection = "v3electionpb.Election";

constexpr CallKind kUnary = CallKind::kUnary;

constexpr std::array kRoutes = {
    Route{"/kv/range", kKv, "Range", kUnary},
    Route{"/kv/put", kKv, "Put", kUnary},
    Route{"/kv/deleterange", kKv, "DeleteRange", kUnary},
    Route{"/kv/txn", kKv, "Txn", kUnary},
    Route{"/kv/compaction", kKv, "Compact", kUnary},
    Route{"/watch", kWatch, "Watch", CallKind::kBidiStream},
    Route{"/lease/grant", kLease, "LeaseGrant", kUnary},
    Route{"/lease/revoke", kLease, "LeaseRevoke", kUnary},
    Route{"/lease/keepalive", kLease, "LeaseKeepAlive", CallKind::kBidiStream},
    Route{"/lease/timetolive", kLease, "LeaseTimeToLive", kUnary},
    Route{"/lease/leases", kLease, "LeaseLeases", kUnary},
    // etcd's older lease paths, kept beside the new ones (rpc.proto's additional_bindings).
    Route{"/kv/lease/revoke", kLease, "LeaseRevoke", kUnary},
    Route{"/kv/lease/timetolive", kLease, "LeaseTimeToLive", kUnary},
    Route{"/kv/lease/leases", kLease, "LeaseLeases", kUnary},
    Route{"/cluster/member/add", kCluster, "MemberAdd", kUnary},
    Route{"/cluster/member/remove", kCluster, "MemberRemove", kUnary},
    Route{"/cluster/member/update", kCluster, "MemberUpdate", kUnary},
    Route{"/cluster/member/list", kCluster, "MemberList", kUnary},
    Route{"/cluster/member/promote", kCluster, "MemberPromote", kUnary},
    Route{"/maintenance/alarm", kMaint, "Alarm", kUnary},
    Route{"/maintenance/status", kMaint, "Status", kUnary},
    Route{"/maintenance/defragment", kMaint, "Defragment", kUnary},
    // etcd 3.4's rpc.proto binds Hash and HashKV both to /maintenance/hash, and its gateway
    // answers with Hash (the first registered); 3.5 moved HashKV to /maintenance/hashkv.
    Route{"/maintenance/hash", kMaint, "Hash", kUnary},
    Route{"/maintenance/hashkv", kMaint, "HashKV", kUnary},
    Route{"/maintenance/snapshot", kMaint, "Snapshot", CallKind::kServerStream},
    Route{"/maintenance/transfer-leadership", kMaint, "MoveLeader", kUnary},
    Route{"/auth/enable", kAuth, "AuthEnable", kUnary},
    Route{"/auth/disable", kAuth, "AuthDisable", kUnary},
    Route{"/auth/authenticate", kAuth, "Authenticate", kUnary},
    Route{"/auth/user/add", kAuth, "UserAdd", kUnary},
    Route{"/auth/user/get", kAuth, "UserGet", kUnary},
    Route{"/auth/user/list", kAuth, "UserList", kUnary},
    Route{"/auth/user/delete", kAuth, "UserDelete", kUnary},
    Route{"/auth/user/changepw", kAuth, "UserChangePassword", kUnary},
    Route{"/auth/user/grant", kAuth, "UserGrantRole", kUnary},
    Route{"/auth/user/revoke", kAuth, "UserRevokeRole", kUnary},
    Route{"/auth/role/add", kAuth, "RoleAdd", kUnary},
    Route{"/auth/role/get", kAuth, "RoleGet", kUnary},
    Route{"/auth/role/list", kAuth, "RoleList", kUnary},
    Route{"/auth/role/delete", kAuth, "RoleDelete", kUnary},
    Route{"/auth/role/grant", kAuth, "RoleGrantPermission", kUnary},
    Route{"/auth/role/revoke", kAuth, "RoleRevokePermission", kUnary},
    Route{"/lock/lock", kLock, "Lock", kUnary},
    Route{"/lock/unlock", kLock, "Unlock", kUnary},
    Route{"/election/campaign", kElection, "Campaign", kUnary},
    Route{"/election/proclaim", kElection, "Proclaim", kUnary},
    Route{"/election/leader", kElection, "Leader", kUnary},
    Route{"/election/observe", kElection, "Observe", CallKind::kServerStream},
    Route{"/election/resign", kElection, "Resign", kUnary},
};

}  // namespace

const Route* FindRoute(std::string_view target) {
  target = target.substr(0, target.find('?'));
  std::string_view path;
  for (std::string_view prefix : {std::string_view("/v3beta/"), std::string_view("/v3/")}) {
    if (target.substr(0, prefix.size()) == prefix) {
      path = target.substr(prefix.size() - 1);
      break;
    }
  }
  if (path.empty()) return nullptr;
  for (const Route& r : kRoutes) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

}  // namespace cairn::api::gateway
