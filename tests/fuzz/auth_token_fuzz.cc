// The auth token and password paths (server/auth) over any bytes: the first byte picks the
// parser. Property: no crash, no hang, and nothing random verifies.
//   0: ParseTokenSpec (the --auth-token flag's value);
//   1: JwtTokens::Verify (an HS256 verifier whose secret the input cannot know);
//   2: SimpleTokens::Lookup (an unknown token is never found);
//   3: PasswordMatches against a bcrypt hash of cost 4, the input being the password (stored
//      hashes come only from HashPassword, never from outside, so they are not fuzzed: a mutated
//      cost field would make one check take hours).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "server/auth/jwt.h"
#include "server/auth/password.h"
#include "server/auth/token.h"
#include "server/base/clock.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

constexpr char kSecret[] = "fuzz-secret-the-input-cannot-know-3f9a7c";

const cairn::auth::JwtTokens& Verifier() {
  static const std::unique_ptr<cairn::auth::JwtTokens> tokens = [] {
    std::filesystem::path key =
        std::filesystem::temp_directory_path() / ("cairn-fuzz-hs256-" + std::to_string(::getpid()));
    std::ofstream(key) << kSecret;
    auto spec = cairn::auth::ParseTokenSpec("jwt,sign-method=HS256,priv-key=" + key.string());
    if (!spec.ok()) std::abort();
    auto created = cairn::auth::JwtTokens::Create(*spec, cairn::base::Clock::Real(), 300000);
    std::filesystem::remove(key);
    if (!created.ok()) std::abort();
    return std::move(*created);
  }();
  return *tokens;
}

const std::string& Cost4Hash() {
  static const std::string hash = [] {
    auto h = cairn::auth::HashPassword("right password", 4);
    if (!h.ok()) std::abort();
    return *h;
  }();
  return hash;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0:
      (void)cairn::auth::ParseTokenSpec(in);
      break;
    case 1: {
      // A valid token needs an HMAC under the secret: random input must never verify.
      if (Verifier().Verify(in).has_value()) std::abort();
      break;
    }
    case 2: {
      cairn::auth::SimpleTokens tokens(cairn::base::Clock::Real(), 300000);
      tokens.Assign("abcdefghijklmnop.1", "root");
      if (in != "abcdefghijklmnop.1" && tokens.Lookup(in).has_value()) std::abort();
      break;
    }
    default:
      if (in != "right password" && cairn::auth::PasswordMatches(in, Cost4Hash())) std::abort();
      break;
  }
  return 0;
}

std::vector<std::string> FuzzSeeds() {
  return {
      std::string(1, '\0') + "jwt,pub-key=/k.pub,priv-key=/k,sign-method=RS256,ttl=10m",
      std::string(1, '\0') + "simple",
      std::string(1, '\1') +
          "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6InJvb3QiLCJyZXZpc2lvbiI6MX0."
          "c2lnbmF0dXJl",
      std::string(1, '\2') + "abcdefghijklmnop.2",
      std::string(1, '\3') + "wrong password",
  };
}
