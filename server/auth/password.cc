#include "server/auth/password.h"

#include <crypt.h>

#include <memory>

namespace cairn::auth {
namespace {

bool Acceptable(std::string_view password) {
  return password.size() <= kMaxPasswordBytes && password.find('\0') == std::string_view::npos;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

absl::StatusOr<std::string> HashPassword(std::string_view password, int cost) {
  if (cost < kMinBcryptCost || cost > kMaxBcryptCost) {
    return absl::InvalidArgumentError("bcrypt cost out of range [4, 31]");
  }
  if (!Acceptable(password)) {
    return absl::InvalidArgumentError("etcdserver: password too long or contains a NUL byte");
  }
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  // rbytes = nullptr: libcrypt draws the salt from the kernel's random source.
  if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0, salt, sizeof(salt)) ==
      nullptr) {
    return absl::InternalError("crypt_gensalt_rn failed");
  }
  auto data = std::make_unique<crypt_data>();
  std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), salt, data.get(), sizeof(*data));
  if (out == nullptr || out[0] == '*') return absl::InternalError("crypt_rn failed");
  return std::string(out);
}

bool PasswordMatches(std::string_view password, const std::string& hash) {
  if (!Acceptable(password) || hash.size() < 7 || hash[0] != '$' || hash[1] != '2') return false;
  auto data = std::make_unique<crypt_data>();
  std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), hash.c_str(), data.get(), sizeof(*data));
  if (out == nullptr || out[0] == '*') return false;
  return ConstantTimeEquals(out, hash);
}

}  // namespace cairn::auth
