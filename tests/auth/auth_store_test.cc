// server/auth: the auth store's etcd semantics (errors, root rules, revision), its persistence
// (reopen), the merged permission index, simple tokens, bcrypt, and a seeded random test of the
// token and password paths with random and oversized input (no crash, nothing accepted).
#include "server/auth/auth_store.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "rocksdb/write_batch.h"
#include "server/auth/password.h"
#include "server/auth/range_perms.h"
#include "server/base/errors.h"
#include "server/base/rng.h"

namespace cairn::auth {
namespace {

using base::ErrorKind;
using base::IsError;

class ManualClock : public base::Clock {
 public:
  int64_t NowMs() override { return now_ms; }
  int64_t WallMs() override { return now_ms; }
  int64_t now_ms = 1000;
};

class AuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-auth-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Open();
  }
  void TearDown() override {
    store_.reset();
    backend_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    store_.reset();
    backend_.reset();
    backend_ = std::move(*storage::Backend::Open(dir_ + "/db"));
    store_ = std::make_unique<AuthStore>(backend_.get(), &clock_, 10000);
    store_->Load();
  }
  absl::Status Apply(const cairnpb::InternalRequest& r) {
    rocksdb::WriteBatch wb;
    absl::Status st = store_->Apply(r, &wb);
    if (!st.ok()) {
      EXPECT_EQ(wb.Count(), 0u) << "a refused change wrote something";
    }
    backend_->Write(&wb);
    return st;
  }
  absl::Status UserAdd(const std::string& name, const std::string& hash = "h") {
    cairnpb::InternalRequest r;
    r.mutable_auth_user_add()->set_name(name);
    r.mutable_auth_user_add()->set_hashedpassword(hash);
    return Apply(r);
  }
  absl::Status RoleAdd(const std::string& name) {
    cairnpb::InternalRequest r;
    r.mutable_auth_role_add()->set_name(name);
    return Apply(r);
  }
  absl::Status Grant(const std::string& user, const std::string& role) {
    cairnpb::InternalRequest r;
    r.mutable_auth_user_grant_role()->set_user(user);
    r.mutable_auth_user_grant_role()->set_role(role);
    return Apply(r);
  }
  absl::Status GrantPerm(const std::string& role, authpb::Permission::Type type,
                         const std::string& key, const std::string& end) {
    cairnpb::InternalRequest r;
    auto* g = r.mutable_auth_role_grant_permission();
    g->set_name(role);
    g->mutable_perm()->set_permtype(type);
    g->mutable_perm()->set_key(key);
    g->mutable_perm()->set_range_end(end);
    return Apply(r);
  }
  absl::Status Enable() {
    cairnpb::InternalRequest r;
    r.mutable_auth_enable();
    return Apply(r);
  }

  std::string dir_;
  ManualClock clock_;
  std::unique_ptr<storage::Backend> backend_;
  std::unique_ptr<AuthStore> store_;
};

TEST_F(AuthStoreTest, EnableNeedsRootWithRootRole) {
  EXPECT_TRUE(IsError(Enable(), ErrorKind::kRootUserNotExist));
  ASSERT_TRUE(UserAdd("root").ok());
  EXPECT_TRUE(IsError(Enable(), ErrorKind::kRootRoleNotExist));
  ASSERT_TRUE(RoleAdd("root").ok());
  ASSERT_TRUE(Grant("root", "root").ok());
  uint64_t rev = store_->revision();
  ASSERT_TRUE(Enable().ok());
  EXPECT_TRUE(store_->enabled());
  EXPECT_EQ(store_->revision(), rev + 1);
  EXPECT_TRUE(Enable().ok());  // already enabled: no error, no change
  EXPECT_EQ(store_->revision(), rev + 1);
}

TEST_F(AuthStoreTest, UserAndRoleErrors) {
  EXPECT_TRUE(IsError(UserAdd(""), ErrorKind::kUserEmpty));
  ASSERT_TRUE(UserAdd("alice").ok());
  EXPECT_TRUE(IsError(UserAdd("alice"), ErrorKind::kUserAlreadyExist));
  EXPECT_TRUE(IsError(RoleAdd(""), ErrorKind::kRoleEmpty));
  ASSERT_TRUE(RoleAdd("r").ok());
  EXPECT_TRUE(IsError(RoleAdd("r"), ErrorKind::kRoleAlreadyExist));
  EXPECT_TRUE(IsError(Grant("bob", "r"), ErrorKind::kUserNotFound));
  EXPECT_TRUE(IsError(Grant("alice", "nope"), ErrorKind::kRoleNotFound));
  ASSERT_TRUE(Grant("alice", "r").ok());
  uint64_t rev = store_->revision();
  EXPECT_TRUE(Grant("alice", "r").ok());  // already granted: no change
  EXPECT_EQ(store_->revision(), rev);
  cairnpb::InternalRequest revoke;
  revoke.mutable_auth_user_revoke_role()->set_name("alice");
  revoke.mutable_auth_user_revoke_role()->set_role("other");
  EXPECT_TRUE(IsError(Apply(revoke), ErrorKind::kRoleNotGranted));
  cairnpb::InternalRequest rp;
  rp.mutable_auth_role_revoke_permission()->set_role("r");
  rp.mutable_auth_role_revoke_permission()->set_key("k");
  EXPECT_TRUE(IsError(Apply(rp), ErrorKind::kPermissionNotGranted));
  rp.mutable_auth_role_revoke_permission()->set_role("none");
  EXPECT_TRUE(IsError(Apply(rp), ErrorKind::kRoleNotFound));
  // Deleting a role revokes it from its users.
  cairnpb::InternalRequest del;
  del.mutable_auth_role_delete()->set_role("r");
  ASSERT_TRUE(Apply(del).ok());
  EXPECT_EQ(store_->GetUser("alice")->roles_size(), 0);
}

TEST_F(AuthStoreTest, RootIsProtectedWhileEnabled) {
  ASSERT_TRUE(UserAdd("root").ok());
  ASSERT_TRUE(RoleAdd("root").ok());
  ASSERT_TRUE(Grant("root", "root").ok());
  ASSERT_TRUE(Enable().ok());
  cairnpb::InternalRequest r;
  r.mutable_auth_user_delete()->set_name("root");
  EXPECT_TRUE(IsError(Apply(r), ErrorKind::kInvalidAuthMgmt));
  r.mutable_auth_role_delete()->set_role("root");
  EXPECT_TRUE(IsError(Apply(r), ErrorKind::kInvalidAuthMgmt));
  r.mutable_auth_user_revoke_role()->set_name("root");
  r.mutable_auth_user_revoke_role()->set_role("root");
  EXPECT_TRUE(IsError(Apply(r), ErrorKind::kInvalidAuthMgmt));
  EXPECT_TRUE(store_->CheckAdmin("root").ok());
  EXPECT_TRUE(IsError(store_->CheckAdmin(""), ErrorKind::kUserEmpty));
  EXPECT_TRUE(IsError(store_->CheckAdmin("ghost"), ErrorKind::kUserNotFound));
}

TEST_F(AuthStoreTest, PermissionsAndPersistence) {
  ASSERT_TRUE(UserAdd("root").ok());
  ASSERT_TRUE(RoleAdd("root").ok());
  ASSERT_TRUE(Grant("root", "root").ok());
  ASSERT_TRUE(UserAdd("alice").ok());
  ASSERT_TRUE(RoleAdd("r").ok());
  ASSERT_TRUE(GrantPerm("r", authpb::Permission::READ, "/a/", "/a0").ok());
  ASSERT_TRUE(GrantPerm("r", authpb::Permission::READWRITE, "k", "").ok());
  ASSERT_TRUE(GrantPerm("r", authpb::Permission::WRITE, "w", std::string("\0", 1)).ok());
  ASSERT_TRUE(Grant("alice", "r").ok());
  // Disabled: everything passes.
  EXPECT_TRUE(store_->CheckRange("", "x", "", AuthStore::Access::kWrite).ok());
  ASSERT_TRUE(Enable().ok());
  const uint64_t rev = store_->revision();
  for (int round = 0; round < 2; ++round) {
    using A = AuthStore::Access;
    EXPECT_TRUE(store_->CheckRange("alice", "/a/x", "", A::kRead).ok());
    EXPECT_TRUE(store_->CheckRange("alice", "/a/", "/a0", A::kRead).ok());
    EXPECT_TRUE(
        IsError(store_->CheckRange("alice", "/a/", "/b", A::kRead), ErrorKind::kPermissionDenied));
    EXPECT_TRUE(
        IsError(store_->CheckRange("alice", "/a/x", "", A::kWrite), ErrorKind::kPermissionDenied));
    EXPECT_TRUE(store_->CheckRange("alice", "k", "", A::kWrite).ok());
    EXPECT_TRUE(
        IsError(store_->CheckRange("alice", "k2", "", A::kRead), ErrorKind::kPermissionDenied));
    EXPECT_TRUE(store_->CheckRange("alice", "zzz", "", A::kWrite).ok());
    EXPECT_TRUE(store_->CheckRange("alice", "w", std::string("\0", 1), A::kWrite).ok());
    EXPECT_TRUE(IsError(store_->CheckRange("alice", "a", std::string("\0", 1), A::kWrite),
                        ErrorKind::kPermissionDenied));
    EXPECT_TRUE(IsError(store_->CheckRange("", "k", "", A::kRead), ErrorKind::kUserEmpty));
    EXPECT_TRUE(
        IsError(store_->CheckRange("ghost", "k", "", A::kRead), ErrorKind::kPermissionDenied));
    EXPECT_TRUE(store_->CheckRange("root", "anything", "", A::kWrite).ok());
    EXPECT_TRUE(IsError(store_->CheckAdmin("alice"), ErrorKind::kPermissionDenied));
    EXPECT_EQ(store_->revision(), rev);
    EXPECT_TRUE(store_->enabled());
    EXPECT_EQ(store_->GetRole("r")->keypermission_size(), 3);
    Open();  // the same answers from what was persisted
  }
}

TEST_F(AuthStoreTest, SimpleTokensExpireAndFollowUsers) {
  ASSERT_TRUE(UserAdd("root").ok());
  ASSERT_TRUE(RoleAdd("root").ok());
  ASSERT_TRUE(Grant("root", "root").ok());
  ASSERT_TRUE(Enable().ok());
  cairnpb::InternalRequest a;
  a.mutable_authenticate()->set_name("root");
  a.mutable_authenticate()->set_simple_token("tok.1");
  a.mutable_authenticate()->set_auth_revision(store_->revision() - 1);
  EXPECT_TRUE(IsError(Apply(a), ErrorKind::kAuthOldRevision));
  a.mutable_authenticate()->set_auth_revision(store_->revision());
  ASSERT_TRUE(Apply(a).ok());
  EXPECT_EQ(*store_->UserOfToken("tok.1"), "root");
  clock_.now_ms += 9000;
  EXPECT_TRUE(store_->UserOfToken("tok.1").ok());  // refreshed by the use
  clock_.now_ms += 9000;
  EXPECT_TRUE(store_->UserOfToken("tok.1").ok());
  clock_.now_ms += 10001;
  EXPECT_TRUE(IsError(store_->UserOfToken("tok.1").status(), ErrorKind::kInvalidAuthToken));
  ASSERT_TRUE(Apply(a).ok());
  cairnpb::InternalRequest pw;
  pw.mutable_auth_user_change_password()->set_name("root");
  pw.mutable_auth_user_change_password()->set_hashedpassword("x");
  ASSERT_TRUE(Apply(pw).ok());
  EXPECT_FALSE(store_->UserOfToken("tok.1").ok());  // a password change ends the user's tokens
}

TEST(PasswordTest, HashAndCheck) {
  auto hash = HashPassword("secret", kMinBcryptCost);
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_EQ(hash->rfind("$2b$04$", 0), 0u) << *hash;
  EXPECT_TRUE(PasswordMatches("secret", *hash));
  EXPECT_FALSE(PasswordMatches("secreT", *hash));
  EXPECT_FALSE(PasswordMatches("", *hash));
  EXPECT_NE(*hash, *HashPassword("secret", kMinBcryptCost));  // fresh salt
  EXPECT_FALSE(HashPassword("x", 3).ok());
  EXPECT_FALSE(HashPassword(std::string("a\0b", 3), 4).ok());
  EXPECT_FALSE(HashPassword(std::string(kMaxPasswordBytes + 1, 'a'), 4).ok());
}

// Seeded random input through the token and password paths: nothing crashes, nothing random is
// accepted. CI-sized; set CAIRN_AUTH_FUZZ_ROUNDS for a longer run.
TEST(AuthFuzzTest, RandomTokensAndPasswords) {
  const char* env = getenv("CAIRN_AUTH_FUZZ_ROUNDS");
  const int rounds = env ? atoi(env) : 300;
  const uint64_t seed = 0xa17u;
  base::Rng rng(seed);
  ManualClock clock;
  SimpleTokens tokens(&clock, 1000);
  tokens.Assign(NewSimpleToken(7), "root");
  auto hash = HashPassword("right", kMinBcryptCost);
  ASSERT_TRUE(hash.ok());
  auto random_bytes = [&](size_t max) {
    size_t n = rng.Uniform(max + 1);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng.Uniform(256));
    return s;
  };
  for (int i = 0; i < rounds; ++i) {
    size_t max = (i % 10 == 0) ? 3 * kMaxTokenBytes : 64;
    std::string input = random_bytes(max);
    EXPECT_FALSE(tokens.Lookup(input).has_value()) << "seed " << seed << " round " << i;
    if (i % 20 == 0) {  // bcrypt is slow even at cost 4: fewer rounds
      EXPECT_FALSE(PasswordMatches(input, *hash)) << "seed " << seed << " round " << i;
      EXPECT_FALSE(PasswordMatches("right", input)) << "seed " << seed << " round " << i;
      // A random "hash" that looks like bcrypt's prefix.
      EXPECT_FALSE(PasswordMatches("right", "$2b$04$" + input)) << "seed " << seed;
    }
  }
  EXPECT_TRUE(PasswordMatches("right", *hash));
}

TEST(RangePermsTest, MergesAdjacentAndOverlapping) {
  authpb::Role r;
  auto add = [&](authpb::Permission::Type t, const std::string& k, const std::string& e) {
    auto* p = r.add_keypermission();
    p->set_permtype(t);
    p->set_key(k);
    p->set_range_end(e);
  };
  add(authpb::Permission::READ, "a", "c");
  add(authpb::Permission::READ, "c", "e");
  add(authpb::Permission::READ, "d", "f");
  add(authpb::Permission::WRITE, "x", "");
  RangePerms p = RangePerms::Build({&r});
  EXPECT_TRUE(p.CanRead("a", "f"));
  EXPECT_TRUE(p.CanRead("b", ""));
  EXPECT_FALSE(p.CanRead("a", "g"));
  EXPECT_FALSE(p.CanRead("f", ""));
  EXPECT_TRUE(p.CanWrite("x", ""));
  EXPECT_FALSE(p.CanWrite("x", "y"));
  EXPECT_FALSE(p.CanRead("x", ""));
  EXPECT_FALSE(p.CanRead("a", std::string("\0", 1)));
}

}  // namespace
}  // namespace cairn::auth
