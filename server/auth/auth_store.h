// AuthStore: users, roles, permissions, the auth-enabled flag and the auth revision, as applied
// from the log (docs/auth.md), persisted in the `meta` family under `auth/` (docs/keyspace.md)
// and mirrored in memory with a merged permission index per user for the request gate.
//
// Mutations come only from the applier (Apply, Load), each written to the entry's batch, so auth
// state survives restarts, snapshots (the `meta` family is part of a snapshot) and leader changes.
// Every change bumps the auth revision (etcd's authRevision).
//
// Thread safety: thread-safe. Apply and Load are called by the applier thread; readers (the gate,
// the Auth service) from any thread take a reader lock. The index is rebuilt on every change
// (changes are rare, checks are on every request).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "authpb/auth.pb.h"
#include "cairnpb/internal.pb.h"
#include "rocksdb/write_batch_base.h"
#include "server/auth/jwt.h"
#include "server/auth/range_perms.h"
#include "server/auth/token.h"
#include "server/base/clock.h"
#include "server/storage/backend.h"

namespace cairn::auth {

inline constexpr char kRootUser[] = "root";
inline constexpr char kRootRole[] = "root";

class AuthStore {
 public:
  // `backend` and `clock` must outlive the store. `token_ttl_ms`: simple tokens' TTL. With `jwt`
  // (--auth-token jwt,...) tokens are JWTs and simple tokens are never registered.
  AuthStore(storage::Backend* backend, base::Clock* clock, int64_t token_ttl_ms,
            std::unique_ptr<JwtTokens> jwt = nullptr);

  // Reads the persisted state (at open and after a snapshot install). Drops every simple token
  // after an install (the users they name may have changed).
  void Load();

  // True for the InternalRequest types Apply handles.
  static bool IsAuthRequest(const cairnpb::InternalRequest& r);
  // Applier: applies one auth request, writing its changes to `wb` (the caller commits the batch).
  // Returns etcd's error when the request changes nothing (then nothing was written).
  absl::Status Apply(const cairnpb::InternalRequest& r, rocksdb::WriteBatchBase* wb);

  // ---- readers ----
  bool enabled() const;
  uint64_t revision() const;
  absl::StatusOr<authpb::User> GetUser(std::string_view name) const;  // kUserNotFound
  absl::StatusOr<authpb::Role> GetRole(std::string_view name) const;  // kRoleNotFound
  std::vector<std::string> UserNames() const;                         // sorted
  std::vector<std::string> RoleNames() const;                         // sorted
  bool UserHasRole(std::string_view user, std::string_view role) const;

  // Authenticate's password check (bcrypt, slow: the caller's thread). OK with `*revision` the
  // auth revision checked at; kAuthNotEnabled, or kAuthFailed for an unknown user, a user
  // without password, or a wrong password.
  absl::Status CheckPassword(std::string_view name, std::string_view password,
                             uint64_t* revision) const;

  // The user a token names; kInvalidAuthToken when unknown, expired or malformed.
  absl::StatusOr<std::string> UserOfToken(std::string_view token);
  // The user and auth revision a token carries (etcd's AuthInfo): a JWT's own claims, or for a
  // simple token the current revision (simple tokens never go stale, as in etcd).
  // kInvalidAuthToken when unknown, expired, malformed or badly signed.
  absl::StatusOr<TokenClaims> ClaimsOfToken(std::string_view token);
  // etcd's isOpPermitted revision rule: kAuthOldRevision when `token_revision` (a JWT minted
  // before the last auth change) is older than the store's. OK while auth is disabled.
  absl::Status CheckTokenRevision(uint64_t token_revision) const;

  // etcd's permission checks; `user` "" means the caller sent no identity. OK whenever auth is
  // disabled. Errors: kUserEmpty (no identity), kPermissionDenied.
  enum class Access { kRead, kWrite };
  absl::Status CheckRange(std::string_view user, std::string_view key, std::string_view range_end,
                          Access access) const;
  // Root only: kUserEmpty, kUserNotFound, kPermissionDenied.
  absl::Status CheckAdmin(std::string_view user) const;

  SimpleTokens& tokens() { return tokens_; }
  // A random token, new at every start, that acts as root: the token of this member's own
  // in-process client (the v3lock/v3election services, which check their caller's permissions
  // themselves before their steps run). Never leaves the process.
  const std::string& internal_token() const { return internal_token_; }
  // Whether `token` is internal_token() (compared in constant time).
  bool IsInternalToken(std::string_view token) const;
  // The JWT signer/verifier; null with simple tokens.
  const JwtTokens* jwt() const { return jwt_.get(); }

 private:
  struct State {
    bool enabled = false;
    uint64_t revision = 0;
    std::map<std::string, authpb::User, std::less<>> users;
    std::map<std::string, authpb::Role, std::less<>> roles;
    std::map<std::string, std::shared_ptr<const RangePerms>, std::less<>> perms;  // by user
  };
  absl::Status ApplyLocked(const cairnpb::InternalRequest& r, rocksdb::WriteBatchBase* wb)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyUser(const cairnpb::InternalRequest& r, rocksdb::WriteBatchBase* wb)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyRole(const cairnpb::InternalRequest& r, rocksdb::WriteBatchBase* wb)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PutUser(const authpb::User& u, rocksdb::WriteBatchBase* wb)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PutRole(const authpb::Role& r, rocksdb::WriteBatchBase* wb)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bumps and writes the revision and the enabled flag, then rebuilds the permission index.
  void Changed(rocksdb::WriteBatchBase* wb) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RebuildPermsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsRootLocked(std::string_view user) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  storage::Backend* const backend_;
  SimpleTokens tokens_;
  const std::unique_ptr<JwtTokens> jwt_;
  const std::string internal_token_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cairn::auth
