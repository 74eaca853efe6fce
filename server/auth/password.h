// Passwords: bcrypt (`$2b$`) through the system's libcrypt (libxcrypt), as etcd stores them.
// The plain password is never stored or logged; only the hash leaves these functions.
// Thread-safe (each call has its own crypt state). Both are slow by design (cost 10: ~50 ms), so
// they run on the thread of the member that received the request, never the raft or applier one.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cairn::auth {

// etcd's --bcrypt-cost bounds (golang.org/x/crypto/bcrypt's MinCost, MaxCost) and default.
inline constexpr int kMinBcryptCost = 4;
inline constexpr int kMaxBcryptCost = 31;
inline constexpr int kDefaultBcryptCost = 10;
// bcrypt reads at most this many bytes of a password (the rest is ignored, as in etcd 3.4); a
// longer one is accepted. Passwords above kMaxPasswordBytes are refused outright (docs/limits.md).
inline constexpr size_t kBcryptPasswordBytes = 72;
inline constexpr size_t kMaxPasswordBytes = 4096;

// A fresh-salted `$2b$` hash of `password`. InvalidArgument for a cost outside
// [kMinBcryptCost, kMaxBcryptCost], a password with a NUL byte (bcrypt's input is a C string, so
// "a\0b" would hash as "a") or longer than kMaxPasswordBytes.
absl::StatusOr<std::string> HashPassword(std::string_view password, int cost);

// True when `password` matches `hash` (a `$2b$`/`$2a$`/`$2y$` hash). False for a malformed hash
// or any password HashPassword would refuse. Compares in constant time.
bool PasswordMatches(std::string_view password, const std::string& hash);

}  // namespace cairn::auth
