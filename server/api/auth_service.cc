#include "server/api/auth_service.h"

#include "server/api/reactors.h"
#include "server/auth/password.h"
#include "server/auth/token.h"
#include "server/base/errors.h"

namespace cairn::api {

using base::ErrorKind;
using base::MakeError;

bool AuthHandlers::Admit(Method method, const Caller& caller, Done* done) {
  if (!gate_->Admit(method, done)) return false;
  if (auto user = UserOf(server_->auth(), caller); !user.ok()) {
    (*done)(user.status());
    return false;
  }
  return true;
}

bool AuthHandlers::AdmitAdmin(Method method, const Caller& caller, Done* done) {
  if (!gate_->Admit(method, done)) return false;
  if (absl::Status st = AuthorizeAdmin(server_->auth(), caller); !st.ok()) {
    (*done)(st);
    return false;
  }
  return true;
}

template <typename Req>
void AuthHandlers::ProposeAdmin(Method method, const Caller& caller,
                                Req* (cairnpb::InternalRequest::*field)(), const Req& req,
                                etcdserverpb::ResponseHeader* header, Done done) {
  if (!AdmitAdmin(method, caller, &done)) return;
  cairnpb::InternalRequest ir;
  *(ir.*field)() = req;
  Propose(std::move(ir), header, std::move(done));
}

void AuthHandlers::FillHeader(etcdserverpb::ResponseHeader* header) {
  header->set_revision(server_->revision());
  server_->FillHeader(header);
}

void AuthHandlers::Propose(cairnpb::InternalRequest ir, etcdserverpb::ResponseHeader* header,
                           Done done) {
  server_->Propose(std::move(ir), [this, header, done = std::move(done)](mvcc::ApplyResult r) {
    if (r.status.ok()) FillHeader(header);
    done(r.status);
  });
}

void AuthHandlers::Read(std::function<absl::Status()> read, etcdserverpb::ResponseHeader* header,
                        Done done) {
  server_->ReadBarrier(
      [this, read = std::move(read), header, done = std::move(done)](absl::Status barrier) {
        if (!barrier.ok()) return done(barrier);
        absl::Status st = read();
        if (st.ok()) FillHeader(header);
        done(st);
      });
}

void AuthHandlers::AuthEnable(const Caller& caller, const etcdserverpb::AuthEnableRequest& req,
                              etcdserverpb::AuthEnableResponse* resp, Done done) {
  // etcd's needAdminPermission: root once enabled (while disabled anyone may enable, which needs
  // a root user holding the root role, checked at apply).
  ProposeAdmin(Method::kAuthEnable, caller, &cairnpb::InternalRequest::mutable_auth_enable, req,
               resp->mutable_header(), std::move(done));
}

void AuthHandlers::AuthDisable(const Caller& caller, const etcdserverpb::AuthDisableRequest& req,
                               etcdserverpb::AuthDisableResponse* resp, Done done) {
  ProposeAdmin(Method::kAuthDisable, caller, &cairnpb::InternalRequest::mutable_auth_disable, req,
               resp->mutable_header(), std::move(done));
}

void AuthHandlers::AuthStatus(const Caller& caller, const etcdserverpb::AuthStatusRequest&,
                              etcdserverpb::AuthStatusResponse* resp, Done done) {
  if (!Admit(Method::kAuthStatus, caller, &done)) return;
  auth::AuthStore* auth = server_->auth();
  Read(
      [auth, resp] {
        resp->set_enabled(auth->enabled());
        resp->set_authrevision(auth->revision());
        return absl::OkStatus();
      },
      resp->mutable_header(), std::move(done));
}

void AuthHandlers::Authenticate(const Caller&, const etcdserverpb::AuthenticateRequest& req,
                                etcdserverpb::AuthenticateResponse* resp, Done done) {
  if (!gate_->Admit(Method::kAuthenticate, &done)) return;
  // The bcrypt check runs here, on the thread of the member that received the call.
  uint64_t checked_at = 0;
  if (absl::Status st = server_->auth()->CheckPassword(req.name(), req.password(), &checked_at);
      !st.ok()) {
    return done(st);
  }
  cairnpb::InternalRequest ir;
  ir.mutable_authenticate()->set_name(req.name());
  ir.mutable_authenticate()->set_auth_revision(checked_at);
  if (const auth::JwtTokens* jwt = server_->auth()->jwt()) {
    // A JWT at the checked revision; the entry only orders the call and fails if the auth store
    // changed since (then the token would carry an old revision). Nothing to register.
    auto token = jwt->Sign(req.name(), checked_at);
    if (!token.ok()) return done(token.status());
    resp->set_token(*std::move(token));
  } else {
    std::string token = auth::NewSimpleToken(server_->applied_index() + 1);
    ir.mutable_authenticate()->set_simple_token(token);
    resp->set_token(std::move(token));
  }
  Propose(std::move(ir), resp->mutable_header(), std::move(done));
}

void AuthHandlers::UserAdd(const Caller& caller, const etcdserverpb::AuthUserAddRequest& req,
                           etcdserverpb::AuthUserAddResponse* resp, Done done) {
  if (!AdmitAdmin(Method::kUserAdd, caller, &done)) return;
  cairnpb::InternalRequest ir;
  auto* add = ir.mutable_auth_user_add();
  add->set_name(req.name());
  *add->mutable_options() = req.options();
  if (!req.options().no_password()) {
    // A caller-made hash (etcd 3.5's hashedPassword) is stored as given; else we hash.
    if (!req.hashedpassword().empty()) {
      add->set_hashedpassword(req.hashedpassword());
    } else {
      auto hash = auth::HashPassword(req.password(), server_->config().bcrypt_cost);
      if (!hash.ok()) return done(hash.status());
      add->set_hashedpassword(*std::move(hash));
    }
  }
  Propose(std::move(ir), resp->mutable_header(), std::move(done));
}

void AuthHandlers::UserGet(const Caller& caller, const etcdserverpb::AuthUserGetRequest& req,
                           etcdserverpb::AuthUserGetResponse* resp, Done done) {
  if (!Admit(Method::kUserGet, caller, &done)) return;
  auth::AuthStore* auth = server_->auth();
  // etcd: root, or the user itself.
  if (absl::Status st = AuthorizeAdmin(auth, caller); !st.ok()) {
    auto user = UserOf(auth, caller);
    if (!user.ok() || *user != req.name()) return done(st);
  }
  std::string name = req.name();
  Read(
      [auth, name, resp]() -> absl::Status {
        auto u = auth->GetUser(name);
        if (!u.ok()) return u.status();
        for (const auto& r : u->roles()) resp->add_roles(r);
        return absl::OkStatus();
      },
      resp->mutable_header(), std::move(done));
}

void AuthHandlers::UserList(const Caller& caller, const etcdserverpb::AuthUserListRequest&,
                            etcdserverpb::AuthUserListResponse* resp, Done done) {
  if (!AdmitAdmin(Method::kUserList, caller, &done)) return;
  auth::AuthStore* auth = server_->auth();
  Read(
      [auth, resp] {
        for (auto& n : auth->UserNames()) resp->add_users(std::move(n));
        return absl::OkStatus();
      },
      resp->mutable_header(), std::move(done));
}

void AuthHandlers::UserDelete(const Caller& caller, const etcdserverpb::AuthUserDeleteRequest& req,
                              etcdserverpb::AuthUserDeleteResponse* resp, Done done) {
  ProposeAdmin(Method::kUserDelete, caller, &cairnpb::InternalRequest::mutable_auth_user_delete,
               req, resp->mutable_header(), std::move(done));
}

void AuthHandlers::UserChangePassword(const Caller& caller,
                                      const etcdserverpb::AuthUserChangePasswordRequest& req,
                                      etcdserverpb::AuthUserChangePasswordResponse* resp,
                                      Done done) {
  if (!AdmitAdmin(Method::kUserChangePassword, caller, &done)) return;
  cairnpb::InternalRequest ir;
  auto* change = ir.mutable_auth_user_change_password();
  change->set_name(req.name());
  if (!req.hashedpassword().empty()) {
    change->set_hashedpassword(req.hashedpassword());
  } else {
    auto hash = auth::HashPassword(req.password(), server_->config().bcrypt_cost);
    if (!hash.ok()) return done(hash.status());
    change->set_hashedpassword(*std::move(hash));
  }
  Propose(std::move(ir), resp->mutable_header(), std::move(done));
}

void AuthHandlers::UserGrantRole(const Caller& caller,
                                 const etcdserverpb::AuthUserGrantRoleRequest& req,
                                 etcdserverpb::AuthUserGrantRoleResponse* resp, Done done) {
  ProposeAdmin(Method::kUserGrantRole, caller,
               &cairnpb::InternalRequest::mutable_auth_user_grant_role, req, resp->mutable_header(),
               std::move(done));
}

void AuthHandlers::UserRevokeRole(const Caller& caller,
                                  const etcdserverpb::AuthUserRevokeRoleRequest& req,
                                  etcdserverpb::AuthUserRevokeRoleResponse* resp, Done done) {
  ProposeAdmin(Method::kUserRevokeRole, caller,
               &cairnpb::InternalRequest::mutable_auth_user_revoke_role, req,
               resp->mutable_header(), std::move(done));
}

void AuthHandlers::RoleAdd(const Caller& caller, const etcdserverpb::AuthRoleAddRequest& req,
                           etcdserverpb::AuthRoleAddResponse* resp, Done done) {
  ProposeAdmin(Method::kRoleAdd, caller, &cairnpb::InternalRequest::mutable_auth_role_add, req,
               resp->mutable_header(), std::move(done));
}

void AuthHandlers::RoleGet(const Caller& caller, const etcdserverpb::AuthRoleGetRequest& req,
                           etcdserverpb::AuthRoleGetResponse* resp, Done done) {
  if (!Admit(Method::kRoleGet, caller, &done)) return;
  auth::AuthStore* auth = server_->auth();
  // etcd: root, or a user that has the role.
  if (absl::Status st = AuthorizeAdmin(auth, caller); !st.ok()) {
    auto user = UserOf(auth, caller);
    if (!user.ok() || !auth->UserHasRole(*user, req.role())) return done(st);
  }
  std::string name = req.role();
  Read(
      [auth, name, resp]() -> absl::Status {
        auto r = auth->GetRole(name);
        if (!r.ok()) return r.status();
        for (const auto& p : r->keypermission()) *resp->add_perm() = p;
        return absl::OkStatus();
      },
      resp->mutable_header(), std::move(done));
}

void AuthHandlers::RoleList(const Caller& caller, const etcdserverpb::AuthRoleListRequest&,
                            etcdserverpb::AuthRoleListResponse* resp, Done done) {
  if (!AdmitAdmin(Method::kRoleList, caller, &done)) return;
  auth::AuthStore* auth = server_->auth();
  Read(
      [auth, resp] {
        for (auto& n : auth->RoleNames()) resp->add_roles(std::move(n));
        return absl::OkStatus();
      },
      resp->mutable_header(), std::move(done));
}

void AuthHandlers::RoleDelete(const Caller& caller, const etcdserverpb::AuthRoleDeleteRequest& req,
                              etcdserverpb::AuthRoleDeleteResponse* resp, Done done) {
  ProposeAdmin(Method::kRoleDelete, caller, &cairnpb::InternalRequest::mutable_auth_role_delete,
               req, resp->mutable_header(), std::move(done));
}

void AuthHandlers::RoleGrantPermission(const Caller& caller,
                                       const etcdserverpb::AuthRoleGrantPermissionRequest& req,
                                       etcdserverpb::AuthRoleGrantPermissionResponse* resp,
                                       Done done) {
  ProposeAdmin(Method::kRoleGrantPermission, caller,
               &cairnpb::InternalRequest::mutable_auth_role_grant_permission, req,
               resp->mutable_header(), std::move(done));
}

void AuthHandlers::RoleRevokePermission(const Caller& caller,
                                        const etcdserverpb::AuthRoleRevokePermissionRequest& req,
                                        etcdserverpb::AuthRoleRevokePermissionResponse* resp,
                                        Done done) {
  ProposeAdmin(Method::kRoleRevokePermission, caller,
               &cairnpb::InternalRequest::mutable_auth_role_revoke_permission, req,
               resp->mutable_header(), std::move(done));
}

// ---- gRPC ----

#define CAIRN_AUTH_RPC_IMPL(Name, Req, Resp)                                                      \
  grpc::ServerUnaryReactor* AuthService::Name(                                                    \
      grpc::CallbackServerContext* ctx, const etcdserverpb::Req* req, etcdserverpb::Resp* resp) { \
    auto* reactor = ctx->DefaultReactor();                                                        \
    handlers_->Name(CallerOf(*ctx), *req, resp,                                                   \
                    [reactor](absl::Status st) { reactor->Finish(ToGrpc(st)); });                 \
    return reactor;                                                                               \
  }
CAIRN_AUTH_RPC_IMPL(AuthEnable, AuthEnableRequest, AuthEnableResponse)
CAIRN_AUTH_RPC_IMPL(AuthDisable, AuthDisableRequest, AuthDisableResponse)
CAIRN_AUTH_RPC_IMPL(AuthStatus, AuthStatusRequest, AuthStatusResponse)
CAIRN_AUTH_RPC_IMPL(Authenticate, AuthenticateRequest, AuthenticateResponse)
CAIRN_AUTH_RPC_IMPL(UserAdd, AuthUserAddRequest, AuthUserAddResponse)
CAIRN_AUTH_RPC_IMPL(UserGet, AuthUserGetRequest, AuthUserGetResponse)
CAIRN_AUTH_RPC_IMPL(UserList, AuthUserListRequest, AuthUserListResponse)
CAIRN_AUTH_RPC_IMPL(UserDelete, AuthUserDeleteRequest, AuthUserDeleteResponse)
CAIRN_AUTH_RPC_IMPL(UserChangePassword, AuthUserChangePasswordRequest,
                    AuthUserChangePasswordResponse)
CAIRN_AUTH_RPC_IMPL(UserGrantRole, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse)
CAIRN_AUTH_RPC_IMPL(UserRevokeRole, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse)
CAIRN_AUTH_RPC_IMPL(RoleAdd, AuthRoleAddRequest, AuthRoleAddResponse)
CAIRN_AUTH_RPC_IMPL(RoleGet, AuthRoleGetRequest, AuthRoleGetResponse)
CAIRN_AUTH_RPC_IMPL(RoleList, AuthRoleListRequest, AuthRoleListResponse)
CAIRN_AUTH_RPC_IMPL(RoleDelete, AuthRoleDeleteRequest, AuthRoleDeleteResponse)
CAIRN_AUTH_RPC_IMPL(RoleGrantPermission, AuthRoleGrantPermissionRequest,
                    AuthRoleGrantPermissionResponse)
CAIRN_AUTH_RPC_IMPL(RoleRevokePermission, AuthRoleRevokePermissionRequest,
                    AuthRoleRevokePermissionResponse)
#undef CAIRN_AUTH_RPC_IMPL

}  // namespace cairn::api
