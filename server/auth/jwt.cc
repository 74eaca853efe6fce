#include "server/auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cmath>
#include <map>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "server/auth/token.h"
#include "server/base/env.h"

namespace cairn::auth {
namespace {

// Debian's Abseil has its own string_view.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

enum class Family { kRsa, kPss, kEcdsa, kHmac };

struct Method {
  const char* name;
  Family family;
  const EVP_MD* (*md)();
  int ec_bits;  // ECDSA: the curve's bits (P-521 for ES512, as JWS says)
};

constexpr Method kMethods[] = {
    {"RS256", Family::kRsa, EVP_sha256, 0},     {"RS384", Family::kRsa, EVP_sha384, 0},
    {"RS512", Family::kRsa, EVP_sha512, 0},     {"PS256", Family::kPss, EVP_sha256, 0},
    {"PS384", Family::kPss, EVP_sha384, 0},     {"PS512", Family::kPss, EVP_sha512, 0},
    {"ES256", Family::kEcdsa, EVP_sha256, 256}, {"ES384", Family::kEcdsa, EVP_sha384, 384},
    {"ES512", Family::kEcdsa, EVP_sha512, 521}, {"HS256", Family::kHmac, EVP_sha256, 0},
    {"HS384", Family::kHmac, EVP_sha384, 0},    {"HS512", Family::kHmac, EVP_sha512, 0},
};

const Method* FindMethod(std::string_view name) {
  for (const auto& m : kMethods) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

absl::StatusOr<std::string> ReadKeyFile(base::Env* env, const std::string& path, const char* what) {
  std::string contents;
  if (!env->ReadFile(path, &contents).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-token: cannot read ", what, " '", path, "'"));
  }
  return contents;
}

absl::StatusOr<Pkey> ParsePem(const std::string& pem, bool is_private, const std::string& path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  EVP_PKEY* k = is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                           : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--auth-token: '", path, "' is not a PEM ",
                                                   is_private ? "private" : "public", " key"));
  }
  return Pkey(k);
}

// Does `key` suit `m` (key type; for ECDSA the curve size)?
bool KeyFits(const Method& m, EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  if (m.family == Family::kEcdsa) return id == EVP_PKEY_EC && EVP_PKEY_get_bits(key) == m.ec_bits;
  return id == EVP_PKEY_RSA || (m.family == Family::kPss && id == EVP_PKEY_RSA_PSS);
}

// ECDSA: OpenSSL speaks DER, JWS the fixed-size big-endian r || s (RFC 7518 section 3.4).
bool DerToRaw(std::string_view der, size_t half, std::string* raw) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) return false;
  raw->assign(2 * half, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw->data());
  bool ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, static_cast<int>(half)) > 0 &&
            BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + half, static_cast<int>(half)) > 0;
  ECDSA_SIG_free(sig);
  return ok;
}

bool RawToDer(std::string_view raw, std::string* der) {
  if (raw.empty() || raw.size() % 2 != 0) return false;
  size_t half = raw.size() / 2;
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(in, static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(in + half, static_cast<int>(half), nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return false;
  }
  unsigned char* out = nullptr;
  int n = i2d_ECDSA_SIG(sig, &out);
  ECDSA_SIG_free(sig);
  if (n <= 0) return false;
  der->assign(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return true;
}

// JSON string body (without quotes) for `s`, as Go's encoding/json writes it for ASCII.
std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      absl::StrAppend(&out, "\\u00", absl::BytesToHexString(absl::string_view(&c, 1)));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Strict base64url without padding: the only spelling of its bytes (absl's decoder would also
// take padding and ignore stray low bits of the last character).
bool Unbase64(std::string_view in, std::string* out) {
  return absl::WebSafeBase64Unescape(Av(in), out) && absl::WebSafeBase64Escape(*out) == Av(in);
}

// A JSON object, or nullopt (protobuf's parser: bounded depth, strict syntax).
std::optional<google::protobuf::Struct> ParseObject(std::string_view b64) {
  std::string json;
  if (!Unbase64(b64, &json)) return std::nullopt;
  google::protobuf::Struct obj;
  if (!google::protobuf::util::JsonStringToMessage(json, &obj).ok()) return std::nullopt;
  return obj;
}

// The number field `name` of `obj`: nullopt when absent, NaN when not a finite number.
std::optional<double> NumberField(const google::protobuf::Struct& obj, const char* name) {
  auto it = obj.fields().find(name);
  if (it == obj.fields().end()) return std::nullopt;
  if (!it->second.has_number_value() || !std::isfinite(it->second.number_value())) return NAN;
  return it->second.number_value();
}

}  // namespace

absl::StatusOr<TokenSpec> ParseTokenSpec(std::string_view spec) {
  std::vector<std::string> parts = absl::StrSplit(Av(spec), ',');
  TokenSpec out;
  if (parts[0] == "simple") {
    if (parts.size() > 1)
      return absl::InvalidArgumentError("--auth-token: 'simple' takes no options");
    return out;
  }
  if (parts[0] != "jwt") {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-token: unknown token type '", parts[0], "' (want 'simple' or 'jwt')"));
  }
  out.type = TokenSpec::Type::kJwt;
  for (size_t i = 1; i < parts.size(); ++i) {
    size_t eq = parts[i].find('=');
    std::string k = parts[i].substr(0, eq);
    std::string v = eq == std::string::npos ? "" : parts[i].substr(eq + 1);
    if (k == "sign-method") {
      out.sign_method = std::string(v);
    } else if (k == "pub-key") {
      out.pub_key_path = std::string(v);
    } else if (k == "priv-key") {
      out.priv_key_path = std::string(v);
    } else if (k == "ttl") {
      absl::Duration d;
      if (!absl::ParseDuration(v, &d) || d <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat("--auth-token: invalid ttl '", v, "'"));
      }
      out.ttl_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(d));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--auth-token: unknown jwt option '", k, "'"));
    }
  }
  if (out.sign_method.empty())
    return absl::InvalidArgumentError("--auth-token: jwt needs sign-method");
  if (FindMethod(out.sign_method) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-token: unsupported sign-method '", out.sign_method, "'"));
  }
  if (out.priv_key_path.empty() && out.pub_key_path.empty()) {
    return absl::InvalidArgumentError("--auth-token: jwt needs priv-key and/or pub-key");
  }
  return out;
}

// Tokens already verified, so that a client reusing its token (every request carries it) pays for
// the signature check once: the exact token bytes map to their claims and exp, which is checked
// again on every hit. Bounded: emptied when full (docs/limits.md).
constexpr size_t kVerifiedTokensMax = 4096;

struct Verified {
  TokenClaims claims;
  std::optional<double> exp;
  std::optional<double> nbf;
};

struct JwtTokens::Keys {
  absl::Mutex cache_mu;
  std::map<std::string, Verified, std::less<>> cache ABSL_GUARDED_BY(cache_mu);
  const Method* method = nullptr;
  Pkey sign_key;           // null: verify-only
  Pkey verify_key;         // the public key, or the private key when no public key was given
  std::string secret;      // HS*
  std::string header_b64;  // base64url({"alg":...,"typ":"JWT"})
};

JwtTokens::JwtTokens(std::unique_ptr<Keys> keys, base::Clock* clock, int64_t ttl_ms)
    : keys_(std::move(keys)), clock_(clock), ttl_ms_(ttl_ms) {}

JwtTokens::~JwtTokens() = default;

absl::StatusOr<std::unique_ptr<JwtTokens>> JwtTokens::Create(const TokenSpec& spec,
                                                             base::Clock* clock,
                                                             int64_t default_ttl_ms) {
  // Key files are read once, at start, through the process's Env (as the member's other files).
  base::Env* env = base::Env::Default();
  auto keys = std::make_unique<Keys>();
  keys->method = FindMethod(spec.sign_method);
  if (keys->method == nullptr) {
    return absl::InvalidArgumentError("--auth-token: unsupported sign-method '" + spec.sign_method +
                                      "'");
  }
  const Method& m = *keys->method;
  if (m.family == Family::kHmac) {
    if (spec.priv_key_path.empty())
      return absl::InvalidArgumentError("--auth-token: " + spec.sign_method +
                                        " needs priv-key (the secret)");
    auto secret = ReadKeyFile(env, spec.priv_key_path, "priv-key");
    if (!secret.ok()) return secret.status();
    if (secret->empty())
      return absl::InvalidArgumentError("--auth-token: priv-key '" + spec.priv_key_path +
                                        "' is empty");
    keys->secret = *std::move(secret);
  } else {
    for (bool is_private : {true, false}) {
      const std::string& path = is_private ? spec.priv_key_path : spec.pub_key_path;
      if (path.empty()) continue;
      auto pem = ReadKeyFile(env, path, is_private ? "priv-key" : "pub-key");
      if (!pem.ok()) return pem.status();
      auto key = ParsePem(*pem, is_private, path);
      if (!key.ok()) return key.status();
      if (!KeyFits(m, key->get())) {
        return absl::InvalidArgumentError("--auth-token: the key in '" + path +
                                          "' does not fit sign-method " + spec.sign_method);
      }
      (is_private ? keys->sign_key : keys->verify_key) = *std::move(key);
    }
    if (!keys->verify_key) {
      EVP_PKEY_up_ref(keys->sign_key.get());
      keys->verify_key.reset(keys->sign_key.get());
    }
  }
  keys->header_b64 =
      absl::WebSafeBase64Escape(absl::StrCat(R"({"alg":")", m.name, R"(","typ":"JWT"})"));
  int64_t ttl = spec.ttl_ms > 0 ? spec.ttl_ms : default_ttl_ms;
  std::unique_ptr<JwtTokens> t(new JwtTokens(std::move(keys), clock, ttl));
  // A signed probe must verify: catches a public key that is not the private key's.
  if (t->keys_->sign_key || m.family == Family::kHmac) {
    auto probe = t->Sign("probe", 1);
    if (!probe.ok()) return probe.status();
    if (!t->Verify(*probe)) {
      return absl::InvalidArgumentError("--auth-token: pub-key does not match priv-key");
    }
  }
  return t;
}

bool JwtTokens::SignBytes(std::string_view data, std::string* sig) const {
  const Method& m = *keys_->method;
  if (m.family == Family::kHmac) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (HMAC(m.md(), keys_->secret.data(), static_cast<int>(keys_->secret.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
             &n) == nullptr) {
      return false;
    }
    sig->assign(reinterpret_cast<char*>(mac), n);
    return true;
  }
  MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, m.md(), nullptr, keys_->sign_key.get()) != 1)
    return false;
  if (m.family == Family::kPss &&
      (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
    return false;
  }
  size_t n = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &n, in, data.size()) != 1) return false;
  std::string out(n, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n, in,
                     data.size()) != 1) {
    return false;
  }
  out.resize(n);
  if (m.family != Family::kEcdsa) {
    *sig = std::move(out);
    return true;
  }
  return DerToRaw(out, (static_cast<size_t>(m.ec_bits) + 7) / 8, sig);
}

bool JwtTokens::VerifyBytes(std::string_view data, std::string_view sig) const {
  const Method& m = *keys_->method;
  if (m.family == Family::kHmac) {
    std::string want;
    return SignBytes(data, &want) && want.size() == sig.size() &&
           CRYPTO_memcmp(want.data(), sig.data(), sig.size()) == 0;
  }
  std::string der;
  if (m.family == Family::kEcdsa) {
    if (sig.size() != 2 * ((static_cast<size_t>(m.ec_bits) + 7) / 8) || !RawToDer(sig, &der))
      return false;
    sig = der;
  }
  MdCtx ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), &pctx, m.md(), nullptr, keys_->verify_key.get()) != 1) {
    return false;
  }
  if (m.family == Family::kPss &&
      (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

absl::StatusOr<std::string> JwtTokens::Sign(std::string_view username, uint64_t revision) const {
  if (!keys_->sign_key && keys_->method->family != Family::kHmac) {
    // etcd's ErrVerifyOnly.
    return absl::FailedPreconditionError("auth: token signing attempted with verify-only key");
  }
  int64_t exp = (clock_->WallMs() + ttl_ms_) / 1000;
  std::string claims = absl::StrCat(R"({"exp":)", exp, R"(,"revision":)", revision,
                                    R"(,"username":")", JsonEscape(username), R"("})");
  std::string signing_input =
      absl::StrCat(keys_->header_b64, ".", absl::WebSafeBase64Escape(claims));
  std::string sig;
  if (!SignBytes(signing_input, &sig)) return absl::InternalError("auth: signing the jwt failed");
  return absl::StrCat(signing_input, ".", absl::WebSafeBase64Escape(sig));
}

std::optional<TokenClaims> JwtTokens::Verify(std::string_view token) const {
  if (token.size() > kMaxTokenBytes) return std::nullopt;
  double now_s = static_cast<double>(clock_->WallMs()) / 1000;
  // As jwt-go's MapClaims.Valid: exp and nbf are checked when present (on every use).
  auto in_time = [now_s](const Verified& v) {
    return !(v.exp && !(now_s <= *v.exp)) && !(v.nbf && !(now_s >= *v.nbf));
  };
  {
    absl::MutexLock l(&keys_->cache_mu);
    auto it = keys_->cache.find(token);
    if (it != keys_->cache.end()) {
      if (in_time(it->second)) return it->second.claims;
      keys_->cache.erase(it);
      return std::nullopt;
    }
  }
  size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return std::nullopt;
  size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  // The header must name our method (etcd refuses any other, "none" included).
  auto header = ParseObject(token.substr(0, dot1));
  if (!header) return std::nullopt;
  auto alg = header->fields().find("alg");
  if (alg == header->fields().end() || alg->second.string_value() != keys_->method->name) {
    return std::nullopt;
  }
  std::string sig;
  if (!Unbase64(token.substr(dot2 + 1), &sig) || !VerifyBytes(token.substr(0, dot2), sig)) {
    return std::nullopt;
  }
  auto claims = ParseObject(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!claims) return std::nullopt;
  Verified v;
  v.exp = NumberField(*claims, "exp");
  v.nbf = NumberField(*claims, "nbf");
  auto user = claims->fields().find("username");
  std::optional<double> rev = NumberField(*claims, "revision");
  if (user == claims->fields().end() || !user->second.has_string_value() || !rev ||
      !(*rev >= 0 && *rev < 1.8e19) || !in_time(v)) {
    return std::nullopt;
  }
  v.claims = TokenClaims{user->second.string_value(), static_cast<uint64_t>(*rev)};
  absl::MutexLock l(&keys_->cache_mu);
  if (keys_->cache.size() >= kVerifiedTokensMax) keys_->cache.clear();
  keys_->cache.emplace(std::string(token), v);
  return v.claims;
}

}  // namespace cairn::auth
