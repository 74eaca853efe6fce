#include "cairn/auth.h"

#include "client/src/core.h"

namespace cairn {

using internal::CopyHeader;
using internal::RpcClass;
using internal::StartUnary;

namespace {

template <typename Req, typename Resp>
Future<AuthResponse> Simple(const std::shared_ptr<internal::Core>& core, RpcClass cls,
                            const CallOptions& call, Req req,
                            typename internal::UnaryCall<Req, Resp, AuthResponse>::Invoke invoke) {
  return StartUnary<Req, Resp, AuthResponse>(core, cls, call, std::move(req), std::move(invoke),
                                             [](Resp& r) -> absl::StatusOr<AuthResponse> {
                                               AuthResponse out;
                                               CopyHeader(r.header(), &out.header);
                                               return out;
                                             });
}

}  // namespace

Future<AuthResponse> AuthClient::AuthEnableAsync(const CallOptions& call) const {
  return Simple<etcdserverpb::AuthEnableRequest, etcdserverpb::AuthEnableResponse>(
      core_, RpcClass::kWrite, call, {}, CAIRN_RPC(auth, AuthEnable));
}

absl::StatusOr<AuthResponse> AuthClient::AuthEnable(const CallOptions& call) const {
  return AuthEnableAsync(call).Get();
}

Future<AuthResponse> AuthClient::AuthDisableAsync(const CallOptions& call) const {
  return Simple<etcdserverpb::AuthDisableRequest, etcdserverpb::AuthDisableResponse>(
      core_, RpcClass::kWrite, call, {}, CAIRN_RPC(auth, AuthDisable));
}

absl::StatusOr<AuthResponse> AuthClient::AuthDisable(const CallOptions& call) const {
  return AuthDisableAsync(call).Get();
}

Future<AuthStatusResponse> AuthClient::AuthStatusAsync(const CallOptions& call) const {
  return StartUnary<etcdserverpb::AuthStatusRequest, etcdserverpb::AuthStatusResponse,
                    AuthStatusResponse>(
      core_, RpcClass::kRead, call, {}, CAIRN_RPC(auth, AuthStatus),
      [](etcdserverpb::AuthStatusResponse& r) -> absl::StatusOr<AuthStatusResponse> {
        AuthStatusResponse out;
        CopyHeader(r.header(), &out.header);
        out.enabled = r.enabled();
        out.auth_revision = r.authrevision();
        return out;
      });
}

absl::StatusOr<AuthStatusResponse> AuthClient::AuthStatus(const CallOptions& call) const {
  return AuthStatusAsync(call).Get();
}

absl::StatusOr<std::string> AuthClient::Authenticate(const std::string& name,
                                                     const std::string& password,
                                                     const CallOptions& call) const {
  etcdserverpb::AuthenticateRequest req;
  req.set_name(name);
  req.set_password(password);
  return StartUnary<etcdserverpb::AuthenticateRequest, etcdserverpb::AuthenticateResponse,
                    std::string>(
             core_, RpcClass::kRead, call, std::move(req), CAIRN_RPC(auth, Authenticate),
             [](etcdserverpb::AuthenticateResponse& r) -> absl::StatusOr<std::string> {
               return r.token();
             })
      .Get();
}

Future<AuthResponse> AuthClient::UserAddAsync(const std::string& name, const std::string& password,
                                              bool no_password, const CallOptions& call) const {
  etcdserverpb::AuthUserAddRequest req;
  req.set_name(name);
  req.set_password(password);
  req.mutable_options()->set_no_password(no_password);
  return Simple<etcdserverpb::AuthUserAddRequest, etcdserverpb::AuthUserAddResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(auth, UserAdd));
}

absl::StatusOr<AuthResponse> AuthClient::UserAdd(const std::string& name,
                                                 const std::string& password, bool no_password,
                                                 const CallOptions& call) const {
  return UserAddAsync(name, password, no_password, call).Get();
}

Future<AuthUserGetResponse> AuthClient::UserGetAsync(const std::string& name,
                                                     const CallOptions& call) const {
  etcdserverpb::AuthUserGetRequest req;
  req.set_name(name);
  return StartUnary<etcdserverpb::AuthUserGetRequest, etcdserverpb::AuthUserGetResponse,
                    AuthUserGetResponse>(
      core_, RpcClass::kRead, call, std::move(req), CAIRN_RPC(auth, UserGet),
      [](etcdserverpb::AuthUserGetResponse& r) -> absl::StatusOr<AuthUserGetResponse> {
        AuthUserGetResponse out;
        CopyHeader(r.header(), &out.header);
        out.roles.assign(r.roles().begin(), r.roles().end());
        return out;
      });
}

absl::StatusOr<AuthUserGetResponse> AuthClient::UserGet(const std::string& name,
                                                        const CallOptions& call) const {
  return UserGetAsync(name, call).Get();
}

Future<AuthListResponse> AuthClient::UserListAsync(const CallOptions& call) const {
  return StartUnary<etcdserverpb::AuthUserListRequest, etcdserverpb::AuthUserListResponse,
                    AuthListResponse>(
      core_, RpcClass::kRead, call, {}, CAIRN_RPC(auth, UserList),
      [](etcdserverpb::AuthUserListResponse& r) -> absl::StatusOr<AuthListResponse> {
        AuthListResponse out;
        CopyHeader(r.header(), &out.header);
        out.names.assign(r.users().begin(), r.users().end());
        return out;
      });
}

absl::StatusOr<AuthListResponse> AuthClient::UserList(const CallOptions& call) const {
  return UserListAsync(call).Get();
}

Future<AuthResponse> AuthClient::UserDeleteAsync(const std::string& name,
                                                 const CallOptions& call) const {
  etcdserverpb::AuthUserDeleteRequest req;
  req.set_name(name);
  return Simple<etcdserverpb::AuthUserDeleteRequest, etcdserverpb::AuthUserDeleteResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(auth, UserDelete));
}

absl::StatusOr<AuthResponse> AuthClient::UserDelete(const std::string& name,
                                                    const CallOptions& call) const {
  return UserDeleteAsync(name, call).Get();
}

Future<AuthResponse> AuthClient::UserChangePasswordAsync(const std::string& name,
                                                         const std::string& password,
                                                         const CallOptions& call) const {
  etcdserverpb::AuthUserChangePasswordRequest req;
  req.set_name(name);
  req.set_password(password);
  return Simple<etcdserverpb::AuthUserChangePasswordRequest,
                etcdserverpb::AuthUserChangePasswordResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(auth, UserChangePassword));
}

absl::StatusOr<AuthResponse> AuthClient::UserChangePassword(const std::string& name,
                                                            const std::string& password,
                                                            const CallOptions& call) const {
  return UserChangePasswordAsync(name, password, call).Get();
}

Future<AuthResponse> AuthClient::UserGrantRoleAsync(const std::string& user,
                                                    const std::string& role,
                                                    const CallOptions& call) const {
  etcdserverpb::AuthUserGrantRoleRequest req;
  req.set_user(user);
  req.set_role(role);
  return Simple<etcdserverpb::AuthUserGrantRoleRequest, etcdserverpb::AuthUserGrantRoleResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(auth, UserGrantRole));
}

absl::StatusOr<AuthResponse> AuthClient::UserGrantRole(const std::string& user,
                                                       const std::string& role,
                                                       const CallOptions& call) const {
  return UserGrantRoleAsync(user, role, call).Get();
}

Future<AuthResponse> AuthClient::UserRevokeRoleAsync(const std::string& user,
                                                     const std::string& role,
                                                     const CallOptions& call) const {
  etcdserverpb::AuthUserRevokeRoleRequest req;
  req.set_name(user);
  req.set_role(role);
  return Simple<etcdserverpb::AuthUserRevokeRoleRequest, etcdserverpb::AuthUserRevokeRoleResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(auth, UserRevokeRole));
}

absl::StatusOr<AuthResponse> AuthClient::UserRevokeRole(const std::string& user,
                                                        const std::string& role,
                                                        const CallOptions& call) const {
  return UserRevokeRoleAsync(user, role, call).Get();
}

Future<AuthResponse> AuthClient::RoleAddAsync(const std::string& name,
                                              const CallOptions& call) const {
  etcdserverpb::AuthRoleAddRequest req;
  req.set_name(name);
  return Simple<etcdserverpb::AuthRoleAddRequest, etcdserverpb::AuthRoleAddResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(auth, RoleAdd));
}

absl::StatusOr<AuthResponse> AuthClient::RoleAdd(const std::string& name,
                                                 const CallOptions& call) const {
  return RoleAddAsync(name, call).Get();
}

Future<AuthRoleGetResponse> AuthClient::RoleGetAsync(const std::string& name,
                                                     const CallOptions& call) const {
  etcdserverpb::AuthRoleGetRequest req;
  req.set_role(name);
  auto core = core_;
  return StartUnary<etcdserverpb::AuthRoleGetRequest, etcdserverpb::AuthRoleGetResponse,
                    AuthRoleGetResponse>(
      core_, RpcClass::kRead, call, std::move(req), CAIRN_RPC(auth, RoleGet),
      [core](etcdserverpb::AuthRoleGetResponse& r) -> absl::StatusOr<AuthRoleGetResponse> {
        AuthRoleGetResponse out;
        CopyHeader(r.header(), &out.header);
        for (const auto& p : r.perm()) {
          Permission perm;
          perm.type = static_cast<PermissionType>(p.permtype());
          perm.key = core->StripPrefix(p.key());
          perm.range_end = p.range_end();
          if (!core->prefix().empty() && perm.range_end == PrefixEnd(core->prefix())) {
            perm.range_end = std::string(1, '\0');
          } else {
            perm.range_end = core->StripPrefix(perm.range_end);
          }
          out.permissions.push_back(std::move(perm));
        }
        return out;
      });
}

absl::StatusOr<AuthRoleGetResponse> AuthClient::RoleGet(const std::string& name,
                                                        const CallOptions& call) const {
  return RoleGetAsync(name, call).Get();
}

Future<AuthListResponse> AuthClient::RoleListAsync(const CallOptions& call) const {
  return StartUnary<etcdserverpb::AuthRoleListRequest, etcdserverpb::AuthRoleListResponse,
                    AuthListResponse>(
      core_, RpcClass::kRead, call, {}, CAIRN_RPC(auth, RoleList),
      [](etcdserverpb::AuthRoleListResponse& r) -> absl::StatusOr<AuthListResponse> {
        AuthListResponse out;
        CopyHeader(r.header(), &out.header);
        out.names.assign(r.roles().begin(), r.roles().end());
        return out;
      });
}

absl::StatusOr<AuthListResponse> AuthClient::RoleList(const CallOptions& call) const {
  return RoleListAsync(call).Get();
}

Future<AuthResponse> AuthClient::RoleDeleteAsync(const std::string& name,
                                                 const CallOptions& call) const {
  etcdserverpb::AuthRoleDeleteRequest req;
  req.set_role(name);
  return Simple<etcdserverpb::AuthRoleDeleteRequest, etcdserverpb::AuthRoleDeleteResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(auth, RoleDelete));
}

absl::StatusOr<AuthResponse> AuthClient::RoleDelete(const std::string& name,
                                                    const CallOptions& call) const {
  return RoleDeleteAsync(name, call).Get();
}

Future<AuthResponse> AuthClient::RoleGrantPermissionAsync(const std::string& role,
                                                          const Permission& perm,
                                                          const CallOptions& call) const {
  etcdserverpb::AuthRoleGrantPermissionRequest req;
  req.set_name(role);
  req.mutable_perm()->set_permtype(static_cast<authpb::Permission::Type>(perm.type));
  req.mutable_perm()->set_key(core_->AddPrefix(perm.key));
  req.mutable_perm()->set_range_end(core_->AddPrefixEnd(perm.range_end));
  return Simple<etcdserverpb::AuthRoleGrantPermissionRequest,
                etcdserverpb::AuthRoleGrantPermissionResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(auth, RoleGrantPermission));
}

absl::StatusOr<AuthResponse> AuthClient::RoleGrantPermission(const std::string& role,
                                                             const Permission& perm,
                                                             const CallOptions& call) const {
  return RoleGrantPermissionAsync(role, perm, call).Get();
}

Future<AuthResponse> AuthClient::RoleRevokePermissionAsync(const std::string& role,
                                                           const std::string& key,
                                                           const std::string& range_end,
                                                           const CallOptions& call) const {
  etcdserverpb::AuthRoleRevokePermissionRequest req;
  req.set_role(role);
  req.set_key(core_->AddPrefix(key));
  req.set_range_end(core_->AddPrefixEnd(range_end));
  return Simple<etcdserverpb::AuthRoleRevokePermissionRequest,
                etcdserverpb::AuthRoleRevokePermissionResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(auth, RoleRevokePermission));
}

absl::StatusOr<AuthResponse> AuthClient::RoleRevokePermission(const std::string& role,
                                                              const std::string& key,
                                                              const std::string& range_end,
                                                              const CallOptions& call) const {
  return RoleRevokePermissionAsync(role, key, range_end, call).Get();
}

}  // namespace cairn
