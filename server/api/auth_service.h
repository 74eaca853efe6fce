// The etcd v3 Auth service (docs/auth.md): AuthHandlers is transport-neutral (the HTTP gateway
// calls it with the Caller it extracted); AuthService adapts gRPC's callback API to it.
//
// Changes (enable, disable, users, roles, permissions, Authenticate's token) are proposed through
// raft and answered once applied on this member; reads (status, get, list) are answered from the
// local auth store after a ReadIndex barrier. Passwords are hashed with bcrypt here, on the gRPC
// thread of the member that received the call, before proposing: raft and the store see only the
// hash. Authenticate checks the password here too (never on the raft or applier thread), then
// proposes the token it made with the auth revision it checked at (etcd 3.4).
//
// Administration needs the root role once auth is enabled; a user may get itself and the roles it
// has (etcd's applier rules). Thread-safe; the Server and the gate must outlive it.
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/api/auth_gate.h"
#include "server/api/gate.h"
#include "server/etcdserver/server.h"

namespace cairn::api {

class AuthHandlers {
 public:
  using Done = RequestGate::Done;
  AuthHandlers(etcdserver::Server* server, RequestGate* gate) : server_(server), gate_(gate) {}

#define CAIRN_AUTH_HANDLER(Name, Req, Resp)                                               \
  void Name(const Caller& caller, const etcdserverpb::Req& req, etcdserverpb::Resp* resp, \
            Done done);
  CAIRN_AUTH_HANDLER(AuthEnable, AuthEnableRequest, AuthEnableResponse)
  CAIRN_AUTH_HANDLER(AuthDisable, AuthDisableRequest, AuthDisableResponse)
  CAIRN_AUTH_HANDLER(AuthStatus, AuthStatusRequest, AuthStatusResponse)
  CAIRN_AUTH_HANDLER(Authenticate, AuthenticateRequest, AuthenticateResponse)
  CAIRN_AUTH_HANDLER(UserAdd, AuthUserAddRequest, AuthUserAddResponse)
  CAIRN_AUTH_HANDLER(UserGet, AuthUserGetRequest, AuthUserGetResponse)
  CAIRN_AUTH_HANDLER(UserList, AuthUserListRequest, AuthUserListResponse)
  CAIRN_AUTH_HANDLER(UserDelete, AuthUserDeleteRequest, AuthUserDeleteResponse)
  CAIRN_AUTH_HANDLER(UserChangePassword, AuthUserChangePasswordRequest,
                     AuthUserChangePasswordResponse)
  CAIRN_AUTH_HANDLER(UserGrantRole, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse)
  CAIRN_AUTH_HANDLER(UserRevokeRole, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse)
  CAIRN_AUTH_HANDLER(RoleAdd, AuthRoleAddRequest, AuthRoleAddResponse)
  CAIRN_AUTH_HANDLER(RoleGet, AuthRoleGetRequest, AuthRoleGetResponse)
  CAIRN_AUTH_HANDLER(RoleList, AuthRoleListRequest, AuthRoleListResponse)
  CAIRN_AUTH_HANDLER(RoleDelete, AuthRoleDeleteRequest, AuthRoleDeleteResponse)
  CAIRN_AUTH_HANDLER(RoleGrantPermission, AuthRoleGrantPermissionRequest,
                     AuthRoleGrantPermissionResponse)
  CAIRN_AUTH_HANDLER(RoleRevokePermission, AuthRoleRevokePermissionRequest,
                     AuthRoleRevokePermissionResponse)
#undef CAIRN_AUTH_HANDLER

 private:
  // Admit admits `method` and resolves the caller (a bad token fails); AdmitAdmin also requires
  // root. False: `done` already ran with the error.
  bool Admit(Method method, const Caller& caller, Done* done);
  bool AdmitAdmin(Method method, const Caller& caller, Done* done);
  // Proposes `ir`; once applied, fills `header` and runs `done` with the entry's status.
  void Propose(cairnpb::InternalRequest ir, etcdserverpb::ResponseHeader* header, Done done);
  // The shape of most changes: AdmitAdmin, then `req` copied as is into the InternalRequest
  // field that `field` (its mutable_ accessor) names, then Propose.
  template <typename Req>
  void ProposeAdmin(Method method, const Caller& caller, Req* (cairnpb::InternalRequest::*field)(),
                    const Req& req, etcdserverpb::ResponseHeader* header, Done done);
  // Runs `read` after a ReadIndex barrier, then fills `header`.
  void Read(std::function<absl::Status()> read, etcdserverpb::ResponseHeader* header, Done done);
  void FillHeader(etcdserverpb::ResponseHeader* header);

  etcdserver::Server* server_;
  RequestGate* gate_;
};

class AuthService final : public etcdserverpb::Auth::CallbackService {
 public:
  explicit AuthService(AuthHandlers* handlers) : handlers_(handlers) {}

#define CAIRN_AUTH_RPC(Name, Req, Resp)                                                          \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx, const etcdserverpb::Req* req, \
                                 etcdserverpb::Resp* resp) override;
  CAIRN_AUTH_RPC(AuthEnable, AuthEnableRequest, AuthEnableResponse)
  CAIRN_AUTH_RPC(AuthDisable, AuthDisableRequest, AuthDisableResponse)
  CAIRN_AUTH_RPC(AuthStatus, AuthStatusRequest, AuthStatusResponse)
  CAIRN_AUTH_RPC(Authenticate, AuthenticateRequest, AuthenticateResponse)
  CAIRN_AUTH_RPC(UserAdd, AuthUserAddRequest, AuthUserAddResponse)
  CAIRN_AUTH_RPC(UserGet, AuthUserGetRequest, AuthUserGetResponse)
  CAIRN_AUTH_RPC(UserList, AuthUserListRequest, AuthUserListResponse)
  CAIRN_AUTH_RPC(UserDelete, AuthUserDeleteRequest, AuthUserDeleteResponse)
  CAIRN_AUTH_RPC(UserChangePassword, AuthUserChangePasswordRequest, AuthUserChangePasswordResponse)
  CAIRN_AUTH_RPC(UserGrantRole, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse)
  CAIRN_AUTH_RPC(UserRevokeRole, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse)
  CAIRN_AUTH_RPC(RoleAdd, AuthRoleAddRequest, AuthRoleAddResponse)
  CAIRN_AUTH_RPC(RoleGet, AuthRoleGetRequest, AuthRoleGetResponse)
  CAIRN_AUTH_RPC(RoleList, AuthRoleListRequest, AuthRoleListResponse)
  CAIRN_AUTH_RPC(RoleDelete, AuthRoleDeleteRequest, AuthRoleDeleteResponse)
  CAIRN_AUTH_RPC(RoleGrantPermission, AuthRoleGrantPermissionRequest,
                 AuthRoleGrantPermissionResponse)
  CAIRN_AUTH_RPC(RoleRevokePermission, AuthRoleRevokePermissionRequest,
                 AuthRoleRevokePermissionResponse)
#undef CAIRN_AUTH_RPC

 private:
  AuthHandlers* handlers_;
};

}  // namespace cairn::api
