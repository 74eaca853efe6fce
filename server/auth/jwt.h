// JWT tokens (etcd's --auth-token jwt,...; docs/auth.md), signed and verified with OpenSSL.
//
// A token is `base64url(header).base64url(claims).base64url(signature)` with the header
// {"alg":<sign-method>,"typ":"JWT"} and etcd's claims {"exp":<unix s>,"revision":<auth revision>,
// "username":<name>}. Any member holding the key verifies a token alone: no state, no round trip
// to the leader, and tokens survive restarts. A token minted before the last auth change carries
// an old revision; the request gate refuses it for key-range checks as etcd does.
//
// Sign methods: RS256/384/512 and PS256/384/512 (RSA key), ES256/384/512 (P-256, P-384, P-521
// key), HS256/384/512 (the priv-key file's bytes are the secret). For the asymmetric methods the
// public key is optional (derived from the private key); without a private key the member only
// verifies, and Authenticate fails as etcd's does.
//
// Thread safety: a JwtTokens is immutable after Create; Sign and Verify are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/base/clock.h"

namespace cairn::auth {

// etcd's --auth-token value: "simple", or "jwt,sign-method=...,pub-key=...,priv-key=...,ttl=...".
struct TokenSpec {
  enum class Type { kSimple, kJwt };
  Type type = Type::kSimple;
  std::string sign_method;    // e.g. "RS256"
  std::string pub_key_path;   // PEM public key ("" for HS*, or derived from the private key)
  std::string priv_key_path;  // PEM private key, or the HMAC secret for HS*
  int64_t ttl_ms = 0;         // the `ttl` option (a Go duration); 0: --auth-token-ttl
};

// InvalidArgument naming the problem: an unknown type or option, a malformed option, a missing
// sign-method, a sign-method etcd does not know.
absl::StatusOr<TokenSpec> ParseTokenSpec(std::string_view spec);

// What a verified token says.
struct TokenClaims {
  std::string username;
  uint64_t revision = 0;
};

class JwtTokens {
 public:
  // Reads the keys and checks that they fit the sign method (a token signed at start must verify).
  // `default_ttl_ms` (--auth-token-ttl) applies when the spec has no ttl.
  static absl::StatusOr<std::unique_ptr<JwtTokens>> Create(const TokenSpec& spec,
                                                           base::Clock* clock,
                                                           int64_t default_ttl_ms);
  ~JwtTokens();
  JwtTokens(const JwtTokens&) = delete;
  JwtTokens& operator=(const JwtTokens&) = delete;

  // A token for `username` at auth `revision`, expiring ttl from now. FailedPrecondition on a
  // verify-only member (no private key).
  absl::StatusOr<std::string> Sign(std::string_view username, uint64_t revision) const;
  // The claims of a well-formed token with a valid signature by our key, of our sign method, not
  // expired (exp) nor early (nbf); nullopt otherwise (etcd: "invalid auth token"). Any input,
  // of any size, is safe.
  std::optional<TokenClaims> Verify(std::string_view token) const;

  int64_t ttl_ms() const { return ttl_ms_; }

 private:
  struct Keys;
  JwtTokens(std::unique_ptr<Keys> keys, base::Clock* clock, int64_t ttl_ms);
  bool SignBytes(std::string_view data, std::string* sig) const;
  bool VerifyBytes(std::string_view data, std::string_view sig) const;

  std::unique_ptr<Keys> keys_;
  base::Clock* const clock_;
  const int64_t ttl_ms_;
};

}  // namespace cairn::auth
