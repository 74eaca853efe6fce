// Auth administration API (users, roles, permissions). Thread-safe handle; blocking calls are
// fiber-aware; each has an *Async twin returning a Future (the blocking call is its Get()).
// Get/List calls are retried like reads; mutations follow the write rule.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/future.h"
#include "cairn/options.h"
#include "cairn/types.h"

namespace cairn {

namespace internal {
class Core;
}

enum class PermissionType { kRead = 0, kWrite = 1, kReadWrite = 2 };

struct Permission {
  PermissionType type = PermissionType::kRead;
  std::string key;        // without the client's key_prefix
  std::string range_end;  // "" = the single key; PrefixEnd(key) for a prefix
};

struct AuthStatusResponse {
  ResponseHeader header;
  bool enabled = false;
  uint64_t auth_revision = 0;
};

struct AuthUserGetResponse {
  ResponseHeader header;
  std::vector<std::string> roles;
};

struct AuthRoleGetResponse {
  ResponseHeader header;
  std::vector<Permission> permissions;
};

struct AuthListResponse {  // user list / role list
  ResponseHeader header;
  std::vector<std::string> names;
};

struct AuthResponse {
  ResponseHeader header;
};

class AuthClient {
 public:
  explicit AuthClient(std::shared_ptr<internal::Core> core) : core_(std::move(core)) {}

  absl::StatusOr<AuthResponse> AuthEnable(const CallOptions& call = {}) const;
  Future<AuthResponse> AuthEnableAsync(const CallOptions& call = {}) const;
  absl::StatusOr<AuthResponse> AuthDisable(const CallOptions& call = {}) const;
  Future<AuthResponse> AuthDisableAsync(const CallOptions& call = {}) const;
  absl::StatusOr<AuthStatusResponse> AuthStatus(const CallOptions& call = {}) const;
  Future<AuthStatusResponse> AuthStatusAsync(const CallOptions& call = {}) const;
  // Returns a token for name/password (the client manages its own token; this is for tools).
  absl::StatusOr<std::string> Authenticate(const std::string& name, const std::string& password,
                                           const CallOptions& call = {}) const;

  absl::StatusOr<AuthResponse> UserAdd(const std::string& name, const std::string& password,
                                       bool no_password = false,
                                       const CallOptions& call = {}) const;
  Future<AuthResponse> UserAddAsync(const std::string& name, const std::string& password,
                                    bool no_password = false, const CallOptions& call = {}) const;
  absl::StatusOr<AuthUserGetResponse> UserGet(const std::string& name,
                                              const CallOptions& call = {}) const;
  Future<AuthUserGetResponse> UserGetAsync(const std::string& name,
                                           const CallOptions& call = {}) const;
  absl::StatusOr<AuthListResponse> UserList(const CallOptions& call = {}) const;
  Future<AuthListResponse> UserListAsync(const CallOptions& call = {}) const;
  absl::StatusOr<AuthResponse> UserDelete(const std::string& name,
                                          const CallOptions& call = {}) const;
  Future<AuthResponse> UserDeleteAsync(const std::string& name, const CallOptions& call = {}) const;
  absl::StatusOr<AuthResponse> UserChangePassword(const std::string& name,
                                                  const std::string& password,
                                                  const CallOptions& call = {}) const;
  Future<AuthResponse> UserChangePasswordAsync(const std::string& name, const std::string& password,
                                               const CallOptions& call = {}) const;
  absl::StatusOr<AuthResponse> UserGrantRole(const std::string& user, const std::string& role,
                                             const CallOptions& call = {}) const;
  Future<AuthResponse> UserGrantRoleAsync(const std::string& user, const std::string& role,
                                          const CallOptions& call = {}) const;
  absl::StatusOr<AuthResponse> UserRevokeRole(const std::string& user, const std::string& role,
                                              const CallOptions& call = {}) const;
  Future<AuthResponse> UserRevokeRoleAsync(const std::string& user, const std::string& role,
                                           const CallOptions& call = {}) const;

  absl::StatusOr<AuthResponse> RoleAdd(const std::string& name, const CallOptions& call = {}) const;
  Future<AuthResponse> RoleAddAsync(const std::string& name, const CallOptions& call = {}) const;
  absl::StatusOr<AuthRoleGetResponse> RoleGet(const std::string& name,
                                              const CallOptions& call = {}) const;
  Future<AuthRoleGetResponse> RoleGetAsync(const std::string& name,
                                           const CallOptions& call = {}) const;
  absl::StatusOr<AuthListResponse> RoleList(const CallOptions& call = {}) const;
  Future<AuthListResponse> RoleListAsync(const CallOptions& call = {}) const;
  absl::StatusOr<AuthResponse> RoleDelete(const std::string& name,
                                          const CallOptions& call = {}) const;
  Future<AuthResponse> RoleDeleteAsync(const std::string& name, const CallOptions& call = {}) const;
  absl::StatusOr<AuthResponse> RoleGrantPermission(const std::string& role, const Permission& perm,
                                                   const CallOptions& call = {}) const;
  Future<AuthResponse> RoleGrantPermissionAsync(const std::string& role, const Permission& perm,
                                                const CallOptions& call = {}) const;
  absl::StatusOr<AuthResponse> RoleRevokePermission(const std::string& role, const std::string& key,
                                                    const std::string& range_end = "",
                                                    const CallOptions& call = {}) const;
  Future<AuthResponse> RoleRevokePermissionAsync(const std::string& role, const std::string& key,
                                                 const std::string& range_end = "",
                                                 const CallOptions& call = {}) const;

 private:
  std::shared_ptr<internal::Core> core_;
};

}  // namespace cairn
