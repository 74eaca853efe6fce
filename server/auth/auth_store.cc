#include "server/auth/auth_store.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "server/auth/password.h"
#include "server/base/check.h"
#include "server/base/encoding.h"
#include "server/base/errors.h"

namespace cairn::auth {

using base::ErrorKind;
using base::MakeError;
using R = cairnpb::InternalRequest;

namespace {

// docs/keyspace.md, "Auth in `meta`".
constexpr char kEnabledKey[] = "auth/enabled";
constexpr char kRevisionKey[] = "auth/revision";
constexpr char kUserPrefix[] = "auth/user/";
constexpr char kRolePrefix[] = "auth/role/";

template <typename Msg>
void ParseOrDie(Msg* m, const rocksdb::Slice& v, const rocksdb::Slice& key) {
  CAIRN_CHECK(m->ParseFromArray(v.data(), static_cast<int>(v.size())))
      << "corrupt auth record " << key.ToString();
}

}  // namespace

AuthStore::AuthStore(storage::Backend* backend, base::Clock* clock, int64_t token_ttl_ms,
                     std::unique_ptr<JwtTokens> jwt)
    : backend_(backend),
      tokens_(clock, token_ttl_ms),
      jwt_(std::move(jwt)),
      internal_token_("internal." + NewSimpleToken(0) + NewSimpleToken(0)) {}

void AuthStore::Load() {
  State s;
  auto* meta = backend_->cf(storage::Cf::kMeta);
  s.enabled = backend_->ReadMetaString(kEnabledKey) == "1";
  s.revision = static_cast<uint64_t>(backend_->ReadMetaInt(kRevisionKey, 0));
  std::unique_ptr<rocksdb::Iterator> it(backend_->db()->NewIterator(rocksdb::ReadOptions(), meta));
  for (it->Seek(kUserPrefix); it->Valid() && it->key().starts_with(kUserPrefix); it->Next()) {
    authpb::User u;
    ParseOrDie(&u, it->value(), it->key());
    s.users[u.name()] = std::move(u);
  }
  for (it->Seek(kRolePrefix); it->Valid() && it->key().starts_with(kRolePrefix); it->Next()) {
    authpb::Role r;
    ParseOrDie(&r, it->value(), it->key());
    s.roles[r.name()] = std::move(r);
  }
  CAIRN_CHECK(it->status().ok()) << it->status().ToString();
  tokens_.Clear();
  absl::MutexLock l(&mu_);
  state_ = std::move(s);
  RebuildPermsLocked();
}

bool AuthStore::IsAuthRequest(const cairnpb::InternalRequest& r) {
  switch (r.request_case()) {
    case R::kAuthEnable:
    case R::kAuthDisable:
    case R::kAuthenticate:
    case R::kAuthUserAdd:
    case R::kAuthUserDelete:
    case R::kAuthUserChangePassword:
    case R::kAuthUserGrantRole:
    case R::kAuthUserRevokeRole:
    case R::kAuthRoleAdd:
    case R::kAuthRoleDelete:
    case R::kAuthRoleGrantPermission:
    case R::kAuthRoleRevokePermission:
      return true;
    default:
      return false;
  }
}

absl::Status AuthStore::Apply(const cairnpb::InternalRequest& r, rocksdb::WriteBatchBase* wb) {
  absl::MutexLock l(&mu_);
  return ApplyLocked(r, wb);
}

absl::Status AuthStore::ApplyLocked(const cairnpb::InternalRequest& r,
                                    rocksdb::WriteBatchBase* wb) {
  State& s = state_;
  switch (r.request_case()) {
    case R::kAuthEnable: {
      if (s.enabled) return absl::OkStatus();  // etcd: already enabled is no error
      auto root = s.users.find(kRootUser);
      if (root == s.users.end()) return MakeError(ErrorKind::kRootUserNotExist);
      const auto& roles = root->second.roles();
      if (std::find(roles.begin(), roles.end(), kRootRole) == roles.end()) {
        return MakeError(ErrorKind::kRootRoleNotExist);
      }
      s.enabled = true;
      tokens_.Clear();
      Changed(wb);
      return absl::OkStatus();
    }
    case R::kAuthDisable:
      if (!s.enabled) return absl::OkStatus();
      s.enabled = false;
      tokens_.Clear();
      Changed(wb);
      return absl::OkStatus();
    case R::kAuthenticate: {
      const auto& a = r.authenticate();
      if (!s.enabled) return MakeError(ErrorKind::kAuthNotEnabled);
      if (!s.users.contains(a.name())) return MakeError(ErrorKind::kAuthFailed);
      // The password was checked at a revision since overtaken: the user may have changed.
      if (a.auth_revision() < s.revision) return MakeError(ErrorKind::kAuthOldRevision);
      // A JWT needs no registration: every member verifies it with the key alone.
      if (!jwt_) tokens_.Assign(a.simple_token(), a.name());
      return absl::OkStatus();
    }
    case R::kAuthUserAdd:
    case R::kAuthUserDelete:
    case R::kAuthUserChangePassword:
    case R::kAuthUserGrantRole:
    case R::kAuthUserRevokeRole:
      return ApplyUser(r, wb);
    default:
      return ApplyRole(r, wb);
  }
}

absl::Status AuthStore::ApplyUser(const cairnpb::InternalRequest& r, rocksdb::WriteBatchBase* wb) {
  State& s = state_;
  auto* meta = backend_->cf(storage::Cf::kMeta);
  switch (r.request_case()) {
    case R::kAuthUserAdd: {
      const auto& a = r.auth_user_add();
      if (a.name().empty()) return MakeError(ErrorKind::kUserEmpty);
      if (s.users.contains(a.name())) return MakeError(ErrorKind::kUserAlreadyExist);
      authpb::User u;
      u.set_name(a.name());
      if (!a.options().no_password()) u.set_password(a.hashedpassword());
      u.mutable_options()->set_no_password(a.options().no_password());
      PutUser(u, wb);
      break;
    }
    case R::kAuthUserDelete: {
      const auto& a = r.auth_user_delete();
      if (s.enabled && a.name() == kRootUser) return MakeError(ErrorKind::kInvalidAuthMgmt);
      if (!s.users.contains(a.name())) return MakeError(ErrorKind::kUserNotFound);
      s.users.erase(a.name());
      CAIRN_CHECK(wb->Delete(meta, kUserPrefix + a.name()).ok());
      tokens_.InvalidateUser(a.name());
      break;
    }
    case R::kAuthUserChangePassword: {
      const auto& a = r.auth_user_change_password();
      auto it = s.users.find(a.name());
      if (it == s.users.end()) return MakeError(ErrorKind::kUserNotFound);
      authpb::User u = it->second;
      u.set_password(a.hashedpassword());
      PutUser(u, wb);
      tokens_.InvalidateUser(a.name());
      break;
    }
    case R::kAuthUserGrantRole: {
      const auto& a = r.auth_user_grant_role();
      auto it = s.users.find(a.user());
      if (it == s.users.end()) return MakeError(ErrorKind::kUserNotFound);
      if (a.role() != kRootRole && !s.roles.contains(a.role())) {
        return MakeError(ErrorKind::kRoleNotFound);
      }
      authpb::User u = it->second;
      std::vector<std::string> roles(u.roles().begin(), u.roles().end());
      auto pos = std::lower_bound(roles.begin(), roles.end(), a.role());
      if (pos != roles.end() && *pos == a.role()) return absl::OkStatus();  // etcd: no change
      roles.insert(pos, a.role());
      u.clear_roles();
      for (auto& role : roles) u.add_roles(std::move(role));
      PutUser(u, wb);
      break;
    }
    case R::kAuthUserRevokeRole: {
      const auto& a = r.auth_user_revoke_role();
      if (s.enabled && a.name() == kRootUser && a.role() == kRootRole) {
        return MakeError(ErrorKind::kInvalidAuthMgmt);
      }
      auto it = s.users.find(a.name());
      if (it == s.users.end()) return MakeError(ErrorKind::kUserNotFound);
      authpb::User u = it->second;
      std::vector<std::string> roles(u.roles().begin(), u.roles().end());
      auto pos = std::find(roles.begin(), roles.end(), a.role());
      if (pos == roles.end()) return MakeError(ErrorKind::kRoleNotGranted);
      roles.erase(pos);
      u.clear_roles();
      for (auto& role : roles) u.add_roles(std::move(role));
      PutUser(u, wb);
      break;
    }
    default:
      CAIRN_CHECK(false) << "not a user request: " << r.request_case();
  }
  Changed(wb);
  return absl::OkStatus();
}

absl::Status AuthStore::ApplyRole(const cairnpb::InternalRequest& r, rocksdb::WriteBatchBase* wb) {
  State& s = state_;
  auto* meta = backend_->cf(storage::Cf::kMeta);
  switch (r.request_case()) {
    case R::kAuthRoleAdd: {
      const auto& a = r.auth_role_add();
      if (a.name().empty()) return MakeError(ErrorKind::kRoleEmpty);
      if (s.roles.contains(a.name())) return MakeError(ErrorKind::kRoleAlreadyExist);
      authpb::Role role;
      role.set_name(a.name());
      PutRole(role, wb);
      break;
    }
    case R::kAuthRoleDelete: {
      const auto& a = r.auth_role_delete();
      if (s.enabled && a.role() == kRootRole) return MakeError(ErrorKind::kInvalidAuthMgmt);
      if (!s.roles.contains(a.role())) return MakeError(ErrorKind::kRoleNotFound);
      s.roles.erase(a.role());
      CAIRN_CHECK(wb->Delete(meta, kRolePrefix + a.role()).ok());
      // etcd: the role is revoked from every user holding it.
      std::vector<authpb::User> changed;
      for (const auto& [name, u] : s.users) {
        if (std::find(u.roles().begin(), u.roles().end(), a.role()) == u.roles().end()) continue;
        authpb::User nu = u;
        nu.clear_roles();
        for (const auto& role : u.roles()) {
          if (role != a.role()) nu.add_roles(role);
        }
        changed.push_back(std::move(nu));
      }
      for (const auto& u : changed) PutUser(u, wb);
      break;
    }
    case R::kAuthRoleGrantPermission: {
      const auto& a = r.auth_role_grant_permission();
      auto it = s.roles.find(a.name());
      if (it == s.roles.end()) return MakeError(ErrorKind::kRoleNotFound);
      authpb::Role role = it->second;
      std::vector<authpb::Permission> perms(role.keypermission().begin(),
                                            role.keypermission().end());
      auto same = std::find_if(perms.begin(), perms.end(), [&](const authpb::Permission& p) {
        return p.key() == a.perm().key() && p.range_end() == a.perm().range_end();
      });
      if (same != perms.end()) {
        same->set_permtype(a.perm().permtype());
      } else {
        // Kept sorted by key as etcd does (RoleGet lists them in that order).
        auto pos = std::upper_bound(perms.begin(), perms.end(), a.perm(),
                                    [](const authpb::Permission& x, const authpb::Permission& y) {
                                      return x.key() < y.key();
                                    });
        perms.insert(pos, a.perm());
      }
      role.clear_keypermission();
      for (auto& p : perms) *role.add_keypermission() = std::move(p);
      PutRole(role, wb);
      break;
    }
    case R::kAuthRoleRevokePermission: {
      const auto& a = r.auth_role_revoke_permission();
      auto it = s.roles.find(a.role());
      if (it == s.roles.end()) return MakeError(ErrorKind::kRoleNotFound);
      authpb::Role role = it->second;
      authpb::Role out;
      out.set_name(role.name());
      bool found = false;
      for (const auto& p : role.keypermission()) {
        if (!found && p.key() == a.key() && p.range_end() == a.range_end()) {
          found = true;
          continue;
        }
        *out.add_keypermission() = p;
      }
      if (!found) return MakeError(ErrorKind::kPermissionNotGranted);
      PutRole(out, wb);
      break;
    }
    default:
      CAIRN_CHECK(false) << "not an auth request: " << r.request_case();
  }
  Changed(wb);
  return absl::OkStatus();
}

void AuthStore::PutUser(const authpb::User& u, rocksdb::WriteBatchBase* wb) {
  state_.users[u.name()] = u;
  CAIRN_CHECK(
      wb->Put(backend_->cf(storage::Cf::kMeta), kUserPrefix + u.name(), u.SerializeAsString())
          .ok());
}

void AuthStore::PutRole(const authpb::Role& r, rocksdb::WriteBatchBase* wb) {
  state_.roles[r.name()] = r;
  CAIRN_CHECK(
      wb->Put(backend_->cf(storage::Cf::kMeta), kRolePrefix + r.name(), r.SerializeAsString())
          .ok());
}

void AuthStore::Changed(rocksdb::WriteBatchBase* wb) {
  auto* meta = backend_->cf(storage::Cf::kMeta);
  ++state_.revision;
  std::string rev;
  base::PutBE64(&rev, state_.revision);
  CAIRN_CHECK(wb->Put(meta, kRevisionKey, rev).ok());
  CAIRN_CHECK(wb->Put(meta, kEnabledKey, state_.enabled ? "1" : "0").ok());
  RebuildPermsLocked();
}

void AuthStore::RebuildPermsLocked() {
  state_.perms.clear();
  for (const auto& [name, u] : state_.users) {
    std::vector<const authpb::Role*> roles;
    for (const auto& role : u.roles()) {
      auto it = state_.roles.find(role);
      if (it != state_.roles.end()) roles.push_back(&it->second);
    }
    state_.perms[name] = std::make_shared<const RangePerms>(RangePerms::Build(roles));
  }
}

bool AuthStore::enabled() const {
  absl::ReaderMutexLock l(&mu_);
  return state_.enabled;
}

uint64_t AuthStore::revision() const {
  absl::ReaderMutexLock l(&mu_);
  return state_.revision;
}

absl::StatusOr<authpb::User> AuthStore::GetUser(std::string_view name) const {
  absl::ReaderMutexLock l(&mu_);
  auto it = state_.users.find(name);
  if (it == state_.users.end()) return MakeError(ErrorKind::kUserNotFound);
  return it->second;
}

absl::StatusOr<authpb::Role> AuthStore::GetRole(std::string_view name) const {
  absl::ReaderMutexLock l(&mu_);
  auto it = state_.roles.find(name);
  if (it == state_.roles.end()) return MakeError(ErrorKind::kRoleNotFound);
  return it->second;
}

std::vector<std::string> AuthStore::UserNames() const {
  absl::ReaderMutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, u] : state_.users) out.push_back(name);
  return out;
}

std::vector<std::string> AuthStore::RoleNames() const {
  absl::ReaderMutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, r] : state_.roles) out.push_back(name);
  return out;
}

bool AuthStore::UserHasRole(std::string_view user, std::string_view role) const {
  absl::ReaderMutexLock l(&mu_);
  auto it = state_.users.find(user);
  if (it == state_.users.end()) return false;
  const auto& roles = it->second.roles();
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

absl::Status AuthStore::CheckPassword(std::string_view name, std::string_view password,
                                      uint64_t* revision) const {
  std::string hash;
  {
    absl::ReaderMutexLock l(&mu_);
    if (!state_.enabled) return MakeError(ErrorKind::kAuthNotEnabled);
    auto it = state_.users.find(name);
    if (it == state_.users.end() || it->second.options().no_password()) {
      return MakeError(ErrorKind::kAuthFailed);
    }
    hash = it->second.password();
    *revision = state_.revision;
  }
  // bcrypt outside the lock: it is slow on purpose.
  if (!PasswordMatches(password, hash)) return MakeError(ErrorKind::kAuthFailed);
  return absl::OkStatus();
}

absl::StatusOr<std::string> AuthStore::UserOfToken(std::string_view token) {
  auto claims = ClaimsOfToken(token);
  if (!claims.ok()) return claims.status();
  return std::move(claims->username);
}

bool AuthStore::IsInternalToken(std::string_view token) const {
  return token.size() == internal_token_.size() &&
         CRYPTO_memcmp(token.data(), internal_token_.data(), token.size()) == 0;
}

absl::StatusOr<TokenClaims> AuthStore::ClaimsOfToken(std::string_view token) {
  if (IsInternalToken(token)) {
    return TokenClaims{kRootUser, revision()};
  }
  if (jwt_) {
    std::optional<TokenClaims> claims = jwt_->Verify(token);
    if (!claims) return MakeError(ErrorKind::kInvalidAuthToken);
    return *std::move(claims);
  }
  std::optional<std::string> user = tokens_.Lookup(token);
  if (!user) return MakeError(ErrorKind::kInvalidAuthToken);
  return TokenClaims{*std::move(user), revision()};
}

absl::Status AuthStore::CheckTokenRevision(uint64_t token_revision) const {
  absl::ReaderMutexLock l(&mu_);
  if (!state_.enabled || token_revision >= state_.revision) return absl::OkStatus();
  return MakeError(ErrorKind::kAuthOldRevision);
}

bool AuthStore::IsRootLocked(std::string_view user) const {
  auto it = state_.users.find(user);
  if (it == state_.users.end()) return false;
  const auto& roles = it->second.roles();
  return std::find(roles.begin(), roles.end(), kRootRole) != roles.end();
}

absl::Status AuthStore::CheckRange(std::string_view user, std::string_view key,
                                   std::string_view range_end, Access access) const {
  absl::ReaderMutexLock l(&mu_);
  if (!state_.enabled) return absl::OkStatus();
  if (user.empty()) return MakeError(ErrorKind::kUserEmpty);
  auto it = state_.perms.find(user);
  if (it == state_.perms.end()) return MakeError(ErrorKind::kPermissionDenied);
  if (IsRootLocked(user)) return absl::OkStatus();
  bool ok = access == Access::kRead ? it->second->CanRead(key, range_end)
                                    : it->second->CanWrite(key, range_end);
  return ok ? absl::OkStatus() : MakeError(ErrorKind::kPermissionDenied);
}

absl::Status AuthStore::CheckAdmin(std::string_view user) const {
  absl::ReaderMutexLock l(&mu_);
  if (!state_.enabled) return absl::OkStatus();
  if (user.empty()) return MakeError(ErrorKind::kUserEmpty);
  if (!state_.users.contains(user)) return MakeError(ErrorKind::kUserNotFound);
  return IsRootLocked(user) ? absl::OkStatus() : MakeError(ErrorKind::kPermissionDenied);
}

}  // namespace cairn::auth
