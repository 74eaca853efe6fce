// Simple tokens (etcd's --auth-token simple): opaque random strings mapped to a user name, with a
// TTL refreshed on every use (etcd's simpleTokenTTL). Member-local state, but every member has the
// same tokens: Authenticate is replicated through raft carrying the token the receiving member
// made, and each member registers it when applying (as etcd 3.4 does), so a token is honoured by
// any member without a round trip. Tokens are not persisted: after a restart clients
// authenticate again (etcd's clients do so on "invalid auth token").
//
// Thread safety: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/base/clock.h"

namespace cairn::auth {

// etcd's --auth-token-ttl default, seconds.
inline constexpr int64_t kDefaultTokenTtlSeconds = 300;
// A token longer than this is refused before any lookup (docs/limits.md).
inline constexpr size_t kMaxTokenBytes = 4096;

// A fresh simple token: 16 random letters from the kernel's random source, '.', `index` (as
// etcd's "<random>.<raft index>").
std::string NewSimpleToken(uint64_t index);

class SimpleTokens {
 public:
  SimpleTokens(base::Clock* clock, int64_t ttl_ms) : clock_(clock), ttl_ms_(ttl_ms) {}

  void Assign(const std::string& token, const std::string& user);
  // The token's user, refreshing its TTL; nullopt when unknown or expired (then removed).
  std::optional<std::string> Lookup(std::string_view token);
  void InvalidateUser(std::string_view user);
  void Clear();
  size_t size() const;

 private:
  struct Entry {
    std::string user;
    int64_t expires_ms = 0;
  };
  void SweepLocked(int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  base::Clock* const clock_;
  const int64_t ttl_ms_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry, std::less<>> tokens_ ABSL_GUARDED_BY(mu_);
  int64_t next_sweep_ms_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cairn::auth
