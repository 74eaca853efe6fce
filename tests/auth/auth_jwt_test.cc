// JWT tokens (--auth-token jwt,...) against etcd 3.4 and cairn with the same expectations, keys
// made by the openssl CLI here: a token issued by one member is honoured by the others (verified
// locally), survives a kill -9 and restart, is refused with "revision of auth store is old" after
// an auth change (admin calls excepted, as etcd), and with "invalid auth token" once expired or
// tampered with. Also: cairn refuses a bad --auth-token at start with a clear error.
#include <chrono>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/auth/auth_api.h"
#include "tests/harness/cluster_ops.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

constexpr char kOldRevision[] = "etcdserver: revision of auth store is old";
constexpr char kInvalidToken[] = "etcdserver: invalid auth token";

class AuthJwtTest : public ::testing::TestWithParam<ServerKind> {};

TEST_P(AuthJwtTest, TokensAcrossMembersRestartAndAuthChanges) {
  JwtKeys keys("ES256");
  ASSERT_TRUE(keys.ok());
  auto c = ServerCluster::Start({.kind = GetParam(),
                                 .members = 3,
                                 .extra_args = {"--bcrypt-cost", "4", "--auth-token", keys.Spec()},
                                 .heartbeat_interval_ms = 50,
                                 .election_timeout_ms = 500});
  ASSERT_TRUE(c.ok()) << c.status();
  ServerCluster& cluster = **c;
  Api a0(cluster.ClientEndpoint(0));
  Enable(a0);
  std::string token = a0.Token("app", "apw");
  std::string root = a0.Token("root", "rootpw");
  ASSERT_EQ(std::count(token.begin(), token.end(), '.'), 2) << token;
  for (int m = 0; m < 3; ++m) {
    Api am(cluster.ClientEndpoint(m));
    ExpectEventually([&] { return Put(am, token, "app/x"); }, {}, "member " + std::to_string(m));
    EXPECT_EQ(Put(am, token, "other/x").message, "etcdserver: permission denied");
    std::string tampered = token;
    tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
    EXPECT_EQ(Get(am, tampered, "app/x"), (Answer{16, kInvalidToken}));
  }
  // Stateless: the token still works on a member killed with -9 and restarted.
  cluster.Kill(1);
  ASSERT_TRUE(cluster.Restart(1).ok());
  Api a1(cluster.ClientEndpoint(1));
  ExpectEventually([&] { return Get(a1, token, "app/x"); }, {}, "after restart");
  // An auth change makes every earlier token stale for key access (etcd's isOpPermitted), on
  // every member; admin calls do not check the revision, as in etcd.
  AddUser(a0, root, "other", "opw", "");
  for (int m = 0; m < 3; ++m) {
    Api am(cluster.ClientEndpoint(m));
    ExpectEventually([&] { return Get(am, token, "app/x"); }, {3, kOldRevision},
                     "stale get on member " + std::to_string(m));
    EXPECT_EQ(Put(am, token, "app/x"), (Answer{3, kOldRevision}));
  }
  AuthUserListRequest list;
  AuthUserListResponse list_resp;
  MustOk(a0.Call(root, [&](auto* ctx) { return a0.auth->UserList(ctx, list, &list_resp); }),
         "user list with a stale root token");
  EXPECT_EQ(list_resp.users_size(), 3);
  std::string fresh = a1.Token("app", "apw");
  EXPECT_EQ(Put(a1, fresh, "app/y"), Answer{});
}

// A JWT's exp (the ttl option) ends it: "invalid auth token" (using it does not extend it).
TEST_P(AuthJwtTest, ExpiredTokenIsInvalid) {
  JwtKeys keys("RS256");
  ASSERT_TRUE(keys.ok());
  auto c = ServerCluster::Start(
      {.kind = GetParam(),
       .extra_args = {"--bcrypt-cost", "4", "--auth-token", keys.Spec(",ttl=1s")}});
  ASSERT_TRUE(c.ok()) << c.status();
  Api api((*c)->ClientEndpoint(0));
  Enable(api);
  std::string token = api.Token("app", "apw");
  Answer last;
  EXPECT_TRUE(PollUntil(
      [&] {
        last = Get(api, token, "app/x");
        return last.code != 0;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(100)));
  EXPECT_EQ(last, (Answer{16, kInvalidToken}));
}

INSTANTIATE_TEST_SUITE_P(Servers, AuthJwtTest, ::testing::ValuesIn(TestedServerKinds()),
                         [](const auto& info) { return ServerKindName(info.param); });

// A bad --auth-token stops cairn at start, naming the problem.
TEST(AuthJwtFlagsTest, BadSpecsAreRefusedAtStart) {
  if (!CairnBuilt()) GTEST_FAIL() << "cairn is not built";
  JwtKeys keys("RS256");
  ASSERT_TRUE(keys.ok());
  char tmpl[] = "/tmp/cairn-jwt-flags-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  struct Case {
    std::string spec;
    std::string error;
  } cases[] = {
      {"jwt,priv-key=/nonexistent/jwt.key,sign-method=RS256", "cannot read priv-key"},
      {keys.Spec(",colour=red"), "unknown jwt option 'colour'"},
      {keys.Spec().replace(keys.Spec().find("RS256"), 5, "ES256"), "does not fit sign-method"},
      {"jwt,priv-key=/x", "jwt needs sign-method"},
      {"opaque", "unknown token type 'opaque'"},
  };
  for (const auto& c : cases) {
    CommandResult r =
        RunCommand({ServerBinary(ServerKind::kCairn), "--data-dir", dir + "/d",
                    "--listen-client-urls", "http://127.0.0.1:0", "--auth-token", c.spec},
                   "", 20000);
    EXPECT_NE(r.exit_code, 0) << c.spec;
    EXPECT_NE(r.err.find(c.error), std::string::npos) << c.spec << ": " << r.err;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::testing
