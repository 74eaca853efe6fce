// Helpers of the auth tests (tests/auth): gRPC stubs to one endpoint whose calls carry a token as
// etcd's clients do, and the user/role set-up the tests share.
#pragma once

#include <grpcpp/grpcpp.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/harness/cluster_ops.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {

using namespace etcdserverpb;  // NOLINT: the tests name many request types

struct Answer {
  int code = 0;
  std::string message;
  bool operator==(const Answer&) const = default;
};
inline std::ostream& operator<<(std::ostream& os, const Answer& a) {
  return os << "{" << a.code << " '" << a.message << "'}";
}

// Stubs to one endpoint; each call carries `token` (if not empty) as etcd's clients do.
class Api {
 public:
  explicit Api(const std::string& endpoint)
      : channel_(MakeTestChannel(endpoint)),
        kv(KV::NewStub(channel_)),
        watch(Watch::NewStub(channel_)),
        lease(Lease::NewStub(channel_)),
        cluster(Cluster::NewStub(channel_)),
        maintenance(Maintenance::NewStub(channel_)),
        auth(Auth::NewStub(channel_)) {}

  template <typename Fn>
  Answer Call(const std::string& token, Fn fn) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) ctx.AddMetadata("token", token);
    grpc::Status st = fn(&ctx);
    return {static_cast<int>(st.error_code()), st.error_message()};
  }

  std::string Token(const std::string& name, const std::string& password) {
    AuthenticateRequest req;
    req.set_name(name);
    req.set_password(password);
    AuthenticateResponse resp;
    Answer a = Call("", [&](auto* ctx) { return auth->Authenticate(ctx, req, &resp); });
    EXPECT_EQ(a.code, 0) << a.message;
    return resp.token();
  }

  // A watch create on [key, range_end): "created/canceled/reason" of the first response.
  Answer WatchCreate(const std::string& token, const std::string& key,
                     const std::string& range_end) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) ctx.AddMetadata("token", token);
    auto stream = watch->Watch(&ctx);
    WatchRequest req;
    req.mutable_create_request()->set_key(key);
    req.mutable_create_request()->set_range_end(range_end);
    WatchResponse resp;
    Answer a;
    if (!stream->Write(req) || !stream->Read(&resp)) {
      grpc::Status st = stream->Finish();
      return {static_cast<int>(st.error_code()), st.error_message()};
    }
    a.message = absl::StrCat("created=", resp.created(), " canceled=", resp.canceled(), " '",
                             resp.cancel_reason(), "'");
    ctx.TryCancel();
    stream->Finish().ok();
    return a;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;

 public:
  std::unique_ptr<KV::Stub> kv;
  std::unique_ptr<Watch::Stub> watch;
  std::unique_ptr<Lease::Stub> lease;
  std::unique_ptr<Cluster::Stub> cluster;
  std::unique_ptr<Maintenance::Stub> maintenance;
  std::unique_ptr<Auth::Stub> auth;
};

inline void MustOk(const Answer& a, const std::string& what) {
  ASSERT_EQ(a.code, 0) << what << ": " << a.message;
}

inline void AddUser(Api& api, const std::string& token, const std::string& name,
                    const std::string& pw, const std::string& role) {
  AuthUserAddRequest add;
  add.set_name(name);
  add.set_password(pw);
  AuthUserAddResponse add_resp;
  MustOk(api.Call(token, [&](auto* c) { return api.auth->UserAdd(c, add, &add_resp); }), name);
  if (role.empty()) return;
  AuthUserGrantRoleRequest g;
  g.set_user(name);
  g.set_role(role);
  AuthUserGrantRoleResponse g_resp;
  MustOk(api.Call(token, [&](auto* c) { return api.auth->UserGrantRole(c, g, &g_resp); }), name);
}

inline void AddRole(Api& api, const std::string& name, const std::string& prefix,
                    authpb::Permission::Type type) {
  AuthRoleAddRequest add;
  add.set_name(name);
  AuthRoleAddResponse resp;
  MustOk(api.Call("", [&](auto* c) { return api.auth->RoleAdd(c, add, &resp); }), name);
  if (prefix.empty()) return;
  AuthRoleGrantPermissionRequest g;
  g.set_name(name);
  g.mutable_perm()->set_permtype(type);
  g.mutable_perm()->set_key(prefix);
  std::string end = prefix;
  end.back()++;
  g.mutable_perm()->set_range_end(end);
  AuthRoleGrantPermissionResponse g_resp;
  MustOk(api.Call("", [&](auto* c) { return api.auth->RoleGrantPermission(c, g, &g_resp); }), name);
}

// Roles root and rw (read-write on "app/"), users root (rootpw) and app (apw, role rw); auth on.
inline void Enable(Api& api) {
  AddRole(api, "root", "", authpb::Permission::READ);
  AddRole(api, "rw", "app/", authpb::Permission::READWRITE);
  AddUser(api, "", "root", "rootpw", "root");
  AddUser(api, "", "app", "apw", "rw");
  AuthEnableRequest enable;
  AuthEnableResponse resp;
  MustOk(api.Call("", [&](auto* ctx) { return api.auth->AuthEnable(ctx, enable, &resp); }),
         "enable");
}

inline Answer Put(Api& api, const std::string& token, const std::string& key) {
  PutRequest put;
  put.set_key(key);
  put.set_value("v");
  PutResponse resp;
  return api.Call(token, [&](auto* ctx) { return api.kv->Put(ctx, put, &resp); });
}

inline Answer Get(Api& api, const std::string& token, const std::string& key) {
  RangeRequest range;
  range.set_key(key);
  range.set_serializable(true);  // the member's own view: no leader involved
  RangeResponse resp;
  return api.Call(token, [&](auto* ctx) { return api.kv->Range(ctx, range, &resp); });
}

// Polls `call` until it answers `want` (members apply the auth changes at their own pace).
inline void ExpectEventually(const std::function<Answer()>& call, const Answer& want,
                             const std::string& what) {
  Answer last;
  EXPECT_TRUE(PollUntil(
      [&] {
        last = call();
        return last == want;
      },
      std::chrono::seconds(20)))
      << what << ": last answer " << last << ", want " << want;
}

// A key pair made by the openssl CLI in a temporary directory (removed with the object), and the
// etcd --auth-token value that uses it.
class JwtKeys {
 public:
  // An RSA key for RS*/PS*, a P-256 key for ES256.
  explicit JwtKeys(const std::string& sign_method = "RS256") : sign_method_(sign_method) {
    char tmpl[] = "/tmp/cairn-jwt-keys-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::string gen = sign_method[0] == 'E'
                          ? "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
                          : "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048";
    std::string cmd = "cd " + dir_ + " && " + gen + " -out jwt.key 2>/dev/null && " +
                      "openssl pkey -in jwt.key -pubout -out jwt.pub 2>/dev/null";
    ok_ = std::system(cmd.c_str()) == 0;
  }
  ~JwtKeys() { std::filesystem::remove_all(dir_); }
  JwtKeys(const JwtKeys&) = delete;
  JwtKeys& operator=(const JwtKeys&) = delete;

  bool ok() const { return ok_; }
  // --auth-token's value; `extra` (",ttl=1s") is appended.
  std::string Spec(const std::string& extra = "") const {
    return "jwt,pub-key=" + dir_ + "/jwt.pub,priv-key=" + dir_ +
           "/jwt.key,sign-method=" + sign_method_ + extra;
  }

 private:
  std::string sign_method_;
  std::string dir_;
  bool ok_ = false;
};

}  // namespace cairn::testing
