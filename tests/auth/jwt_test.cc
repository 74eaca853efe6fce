// server/auth/jwt: etcd's --auth-token jwt options, signing and verifying with every sign method
// (keys made by the openssl CLI here), refusals (tampered, other key, alg "none", other method,
// expired, early), verify-only members, a token signed by the openssl CLI itself, and a seeded
// random test of the JWT parser (random, oversized and structured-garbage input: no crash,
// nothing accepted).
#include "server/auth/jwt.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "server/auth/token.h"
#include "server/base/rng.h"

namespace cairn::auth {
namespace {

class WallClock : public base::Clock {
 public:
  int64_t NowMs() override { return wall_ms; }
  int64_t WallMs() override { return wall_ms; }
  int64_t wall_ms = 1'700'000'000'000;
};

std::string B64(std::string_view s) {
  return absl::WebSafeBase64Escape(absl::string_view(s.data(), s.size()));
}

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/cairn-jwt-XXXXXX";
    dir_ = new std::string(mkdtemp(tmpl));
    Sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key");
    Sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2.key");
    Sh("openssl pkey -in rsa.key -pubout -out rsa.pub");
    Sh("openssl pkey -in rsa2.key -pubout -out rsa2.pub");
    for (const char* curve : {"P-256", "P-384", "P-521"}) {
      std::string c(curve);
      Sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:" + c + " -out " + c + ".key");
      Sh("openssl pkey -in " + c + ".key -pubout -out " + c + ".pub");
    }
    Sh("printf 'a shared secret' > hmac.key");
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static void Sh(const std::string& cmd) {
    std::string full = "cd " + *dir_ + " && " + cmd + " 2>/dev/null";
    ASSERT_EQ(std::system(full.c_str()), 0) << cmd;
  }
  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }

  std::unique_ptr<JwtTokens> Make(const std::string& method, const std::string& priv,
                                  const std::string& pub, int64_t ttl_ms = 0) {
    TokenSpec spec;
    spec.type = TokenSpec::Type::kJwt;
    spec.sign_method = method;
    spec.priv_key_path = priv.empty() ? "" : Path(priv);
    spec.pub_key_path = pub.empty() ? "" : Path(pub);
    spec.ttl_ms = ttl_ms;
    auto t = JwtTokens::Create(spec, &clock_, 300'000);
    EXPECT_TRUE(t.ok()) << method << ": " << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }

  static std::string* dir_;
  WallClock clock_;
};
std::string* JwtTest::dir_ = nullptr;

TEST(TokenSpecTest, ParsesEtcdSyntax) {
  auto simple = ParseTokenSpec("simple");
  ASSERT_TRUE(simple.ok());
  EXPECT_EQ(simple->type, TokenSpec::Type::kSimple);
  auto jwt = ParseTokenSpec("jwt,pub-key=/a.pub,priv-key=/a.key,sign-method=RS512,ttl=10m");
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_EQ(jwt->type, TokenSpec::Type::kJwt);
  EXPECT_EQ(jwt->sign_method, "RS512");
  EXPECT_EQ(jwt->pub_key_path, "/a.pub");
  EXPECT_EQ(jwt->priv_key_path, "/a.key");
  EXPECT_EQ(jwt->ttl_ms, 600'000);
  for (const char* bad :
       {"", "jwt", "jwt,sign-method=RS256", "jwt,priv-key=k", "jwt,priv-key=k,sign-method=none",
        "jwt,priv-key=k,sign-method=XS256", "jwt,priv-key=k,sign-method=RS256,ttl=abc",
        "jwt,priv-key=k,sign-method=RS256,ttl=-1s", "jwt,priv-key=k,sign-method=RS256,color=red",
        "simple,ttl=1s", "opaque"}) {
    EXPECT_FALSE(ParseTokenSpec(bad).ok()) << bad;
  }
}

TEST_F(JwtTest, EverySignMethodSignsAndVerifies) {
  struct Case {
    const char* method;
    const char* priv;
    const char* pub;
  } cases[] = {
      {"RS256", "rsa.key", "rsa.pub"},     {"RS384", "rsa.key", ""},
      {"RS512", "rsa.key", "rsa.pub"},     {"PS256", "rsa.key", "rsa.pub"},
      {"PS384", "rsa.key", "rsa.pub"},     {"PS512", "rsa.key", ""},
      {"ES256", "P-256.key", "P-256.pub"}, {"ES384", "P-384.key", "P-384.pub"},
      {"ES512", "P-521.key", ""},          {"HS256", "hmac.key", ""},
      {"HS384", "hmac.key", ""},           {"HS512", "hmac.key", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method);
    auto t = Make(c.method, c.priv, c.pub);
    ASSERT_NE(t, nullptr);
    auto token = t->Sign("alice \"q\"\n", 42);
    ASSERT_TRUE(token.ok()) << token.status();
    auto claims = t->Verify(*token);
    ASSERT_TRUE(claims.has_value());
    EXPECT_EQ(claims->username, "alice \"q\"\n");
    EXPECT_EQ(claims->revision, 42u);
    // The header names the method; the claims are etcd's.
    std::string header, payload;
    ASSERT_TRUE(absl::WebSafeBase64Unescape(token->substr(0, token->find('.')), &header));
    EXPECT_EQ(header, std::string(R"({"alg":")") + c.method + R"(","typ":"JWT"})");
    size_t d1 = token->find('.'), d2 = token->rfind('.');
    ASSERT_TRUE(absl::WebSafeBase64Unescape(token->substr(d1 + 1, d2 - d1 - 1), &payload));
    EXPECT_EQ(payload, R"({"exp":1700000300,"revision":42,"username":"alice \"q\"\u000a"})");
    // Any changed character of the signature or the claims is refused.
    std::string tampered = *token;
    tampered[d1 + 3] = tampered[d1 + 3] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(t->Verify(tampered).has_value());
    tampered = *token;
    tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
    EXPECT_FALSE(t->Verify(tampered).has_value());
  }
}

TEST_F(JwtTest, RefusesOtherKeysMethodsAndNone) {
  auto rs = Make("RS256", "rsa.key", "rsa.pub");
  auto rs_other = Make("RS256", "rsa2.key", "rsa2.pub");
  auto ps = Make("PS256", "rsa.key", "rsa.pub");
  auto hs = Make("HS256", "hmac.key", "");
  ASSERT_TRUE(rs && rs_other && ps && hs);
  auto token = rs->Sign("alice", 1);
  ASSERT_TRUE(token.ok());
  EXPECT_FALSE(rs_other->Verify(*token).has_value());  // another key
  EXPECT_FALSE(ps->Verify(*token).has_value());        // same key, another method
  // alg "none" with an empty signature, and an HS256 token "signed" with the public key's PEM.
  std::string claims = B64(R"({"revision":1,"username":"root"})");
  EXPECT_FALSE(rs->Verify(B64(R"({"alg":"none","typ":"JWT"})") + "." + claims + ".").has_value());
  EXPECT_FALSE(rs->Verify(B64(R"({"alg":"none"})") + "." + claims).has_value());
  EXPECT_FALSE(hs->Verify(*token).has_value());
  // Not JWTs at all.
  for (const std::string& bad : std::vector<std::string>{"", ".", "..", "...", "a.b.c", "simple.7",
                                                         std::string(kMaxTokenBytes + 1, 'a')}) {
    EXPECT_FALSE(rs->Verify(bad).has_value()) << bad.substr(0, 20);
  }
}

TEST_F(JwtTest, ExpiryAndNotBefore) {
  auto t = Make("ES256", "P-256.key", "P-256.pub", /*ttl_ms=*/10'000);
  ASSERT_NE(t, nullptr);
  auto token = t->Sign("alice", 3);
  ASSERT_TRUE(token.ok());
  clock_.wall_ms += 10'000;
  EXPECT_TRUE(t->Verify(*token).has_value());  // exp is inclusive, as jwt-go
  clock_.wall_ms += 1'000;
  EXPECT_FALSE(t->Verify(*token).has_value());
}

TEST_F(JwtTest, VerifyOnlyMemberAndKeyMismatch) {
  auto signer = Make("RS256", "rsa.key", "");
  auto verifier = Make("RS256", "", "rsa.pub");
  ASSERT_TRUE(signer && verifier);
  auto token = signer->Sign("bob", 5);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(verifier->Verify(*token)->username, "bob");
  EXPECT_EQ(verifier->Sign("bob", 5).status().message(),
            "auth: token signing attempted with verify-only key");
  TokenSpec spec{TokenSpec::Type::kJwt, "RS256", Path("rsa2.pub"), Path("rsa.key"), 0};
  EXPECT_FALSE(JwtTokens::Create(spec, &clock_, 1000).ok());  // pub-key is another key's
  spec = {TokenSpec::Type::kJwt, "ES256", "", Path("rsa.key"), 0};
  EXPECT_FALSE(JwtTokens::Create(spec, &clock_, 1000).ok());  // an RSA key for ES256
  spec = {TokenSpec::Type::kJwt, "ES384", "", Path("P-256.key"), 0};
  EXPECT_FALSE(JwtTokens::Create(spec, &clock_, 1000).ok());  // the wrong curve
  spec = {TokenSpec::Type::kJwt, "RS256", "", Path("missing.key"), 0};
  EXPECT_FALSE(JwtTokens::Create(spec, &clock_, 1000).ok());
  spec = {TokenSpec::Type::kJwt, "RS256", "", Path("hmac.key"), 0};
  EXPECT_FALSE(JwtTokens::Create(spec, &clock_, 1000).ok());  // not PEM
}

// Verified tokens are remembered (bounded): reuse is cheap, a full cache is emptied, and every
// use still checks exp (ExpiryAndNotBefore checks a remembered token's expiry too).
TEST_F(JwtTest, VerifiedTokensAreRememberedBounded) {
  auto t = Make("HS256", "hmac.key", "", /*ttl_ms=*/60'000);
  ASSERT_NE(t, nullptr);
  std::vector<std::string> tokens;
  for (int i = 0; i < 5000; ++i) tokens.push_back(*t->Sign("user" + std::to_string(i), 1));
  for (const auto& tok : tokens) ASSERT_TRUE(t->Verify(tok).has_value());
  for (int i : {0, 4095, 4096, 4999}) {
    auto claims = t->Verify(tokens[i]);
    ASSERT_TRUE(claims.has_value());
    EXPECT_EQ(claims->username, "user" + std::to_string(i));
  }
  clock_.wall_ms += 61'000;
  for (int i : {0, 4999}) EXPECT_FALSE(t->Verify(tokens[i]).has_value());
}

// Tokens signed by the openssl CLI, not by us, verify: the wire format is the standard one.
TEST_F(JwtTest, AcceptsTokensSignedByOpensslCli) {
  std::string input = B64(R"({"alg":"RS256","typ":"JWT"})") + "." +
                      B64(R"({"exp":1800000000,"revision":9,"username":"carol"})");
  struct Case {
    const char* method;
    const char* sigopts;
  } cases[] = {{"RS256", ""},
               {"PS256", " -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method);
    std::string in = input;
    in.replace(0, in.find('.'), B64(std::string(R"({"alg":")") + c.method + R"(","typ":"JWT"})"));
    std::ofstream(Path("input")) << in;
    Sh(std::string("openssl dgst -sha256 -sign rsa.key") + c.sigopts + " -out sig input");
    std::ifstream sig_in(Path("sig"), std::ios::binary);
    std::stringstream sig;
    sig << sig_in.rdbuf();
    auto t = Make(c.method, "", "rsa.pub");
    ASSERT_NE(t, nullptr);
    auto claims = t->Verify(in + "." + B64(sig.str()));
    ASSERT_TRUE(claims.has_value());
    EXPECT_EQ(claims->username, "carol");
    EXPECT_EQ(claims->revision, 9u);
  }
}

// Seeded random input through the JWT parser: random bytes, oversized input, and three
// base64url segments holding random bytes, random JSON-looking text, or a real header with
// random claims and a real signature over other claims. Nothing crashes, nothing is accepted.
// CI-sized; set CAIRN_AUTH_FUZZ_ROUNDS for a longer run.
TEST_F(JwtTest, RandomInputIsRefused) {
  const char* env = getenv("CAIRN_AUTH_FUZZ_ROUNDS");
  const int rounds = env ? atoi(env) : 2000;
  const uint64_t seed = 0x3a7u;
  base::Rng rng(seed);
  auto rs = Make("RS256", "rsa.key", "rsa.pub");
  auto es = Make("ES256", "P-256.key", "");
  ASSERT_TRUE(rs && es);
  std::string good = *rs->Sign("root", 1);
  std::string good_header = good.substr(0, good.find('.'));
  std::string good_sig = good.substr(good.rfind('.') + 1);
  auto random_bytes = [&](size_t max) {
    std::string s(rng.Uniform(max + 1), '\0');
    for (char& c : s) c = static_cast<char>(rng.Uniform(256));
    return s;
  };
  auto random_json = [&] {
    static constexpr const char* kPieces[] = {"{",
                                              "}",
                                              "[",
                                              "]",
                                              ",",
                                              ":",
                                              "\"username\"",
                                              "\"revision\"",
                                              "\"exp\"",
                                              "\"alg\"",
                                              "\"RS256\"",
                                              "\"none\"",
                                              "1",
                                              "-1",
                                              "1e400",
                                              "null",
                                              "true",
                                              "\"\\u0000\"",
                                              "\"root\"",
                                              "18446744073709551616",
                                              "0.5",
                                              "\"",
                                              "\\"};
    std::string s;
    for (size_t n = rng.Uniform(24); n > 0; --n) s += kPieces[rng.Uniform(std::size(kPieces))];
    return s;
  };
  for (int i = 0; i < rounds; ++i) {
    std::string input;
    switch (i % 5) {
      case 0:
        input = random_bytes(i % 50 == 0 ? 3 * kMaxTokenBytes : 128);
        break;
      case 1:
        input = B64(random_bytes(40)) + "." + B64(random_bytes(80)) + "." + B64(random_bytes(64));
        break;
      case 2:
        input = B64(random_json()) + "." + B64(random_json()) + "." + B64(random_bytes(256));
        break;
      case 3:
        input = good_header + "." + B64(random_json()) + "." + good_sig;
        break;
      default: {  // a real token with one random byte changed
        input = good;
        input[rng.Uniform(input.size())] = static_cast<char>(rng.Uniform(256));
        if (input == good) continue;
      }
    }
    EXPECT_FALSE(rs->Verify(input).has_value()) << "seed " << seed << " round " << i;
    EXPECT_FALSE(es->Verify(input).has_value()) << "seed " << seed << " round " << i;
  }
  EXPECT_TRUE(rs->Verify(good).has_value());
}

}  // namespace
}  // namespace cairn::auth
