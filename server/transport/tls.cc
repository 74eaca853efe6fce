#include "server/transport/tls.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/base/env.h"
#include "server/base/logging.h"
#include "server/base/url.h"

namespace cairn::transport {
namespace {

constexpr std::string_view kHttps = "https://";
// etcd's self-signed certificates (--auto-tls) are valid for a year.
constexpr long kAutoTlsValiditySeconds = 365L * 24 * 3600;

absl::Status Invalid(const std::string& what) { return absl::InvalidArgumentError(what); }

// IANA (Go, etcd) names of the TLS 1.2 suites etcd accepts -> OpenSSL's names. TLS 1.3's suites
// are not configurable (in Go either).
const std::map<std::string, std::string>& CipherSuiteNames() {
  static const auto* names = new std::map<std::string, std::string>{
      {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
      {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
      {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
      {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
      {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
      {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
      {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
  };
  return *names;
}

absl::Status CheckVersion(const std::string& flag, const std::string& v) {
  if (v.empty() || v == "TLS1.2" || v == "TLS1.3") return absl::OkStatus();
  return Invalid(
      absl::StrCat("unexpected TLS version \"", v, "\" for --", flag, " (TLS1.2 or TLS1.3)"));
}

// gRPC 1.51 sets each SSL_CTX's protocol range to [TLS1.2, TLS1.3] and its TLS 1.2 cipher list
// from GRPC_SSL_CIPHER_SUITES (read once, when the first TLS credentials are made). The version
// bounds are narrowed through OpenSSL's system_default configuration, which every SSL_CTX_new
// applies: "Protocol = -TLSv1.3" sets SSL_OP_NO_TLSv1_3, which gRPC's later min/max calls leave
// in place.
absl::Status ApplyProcessPolicy(const TlsConfig& c) {
  static std::mutex mu;
  static bool applied = false;
  std::lock_guard<std::mutex> lock(mu);
  if (applied) return absl::OkStatus();
  applied = true;
  if (!c.cipher_suites.empty()) {
    // Set before any thread of ours reads the environment; gRPC reads it once, later.
    setenv("GRPC_SSL_CIPHER_SUITES", OpenSslCipherList(c.cipher_suites).c_str(), 1);
  }
  std::string protocol;
  if (c.max_version == "TLS1.2") protocol = "-TLSv1.3";
  if (c.min_version == "TLS1.3") protocol = "-TLSv1.2";
  if (protocol.empty()) return absl::OkStatus();
  OPENSSL_init_ssl(0, nullptr);
  std::string text = absl::StrCat(
      "openssl_conf = cairn_conf\n[cairn_conf]\nssl_conf = cairn_ssl\n[cairn_ssl]\n",
      "system_default = cairn_system\n[cairn_system]\nCipherString = DEFAULT:@SECLEVEL=2\n",
      "Protocol = ALL,-SSLv3,-TLSv1,-TLSv1.1,", protocol, "\n");
  BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
  CONF* conf = NCONF_new(nullptr);
  long line = 0;
  bool ok = NCONF_load_bio(conf, bio, &line) > 0 && CONF_modules_load(conf, nullptr, 0) > 0;
  NCONF_free(conf);
  BIO_free(bio);
  if (!ok) return absl::InternalError("cannot apply the TLS version bounds: " + OpenSslError());
  CAIRN_LOG(kInfo, "tls") << "TLS versions: " << (c.min_version.empty() ? "TLS1.2" : c.min_version)
                          << " to " << (c.max_version.empty() ? "TLS1.3" : c.max_version);
  return absl::OkStatus();
}

std::string ReadPem(const std::string& path, absl::Status* status, const std::string& flag) {
  std::string data;
  absl::Status s = base::Env::Default()->ReadFile(path, &data);
  if (!s.ok())
    *status = Invalid(absl::StrCat("cannot read --", flag, " ", path, ": ", s.message()));
  return data;
}

// Checks that the files load and that the key belongs to the (first) certificate.
absl::Status CheckFiles(const TlsConfig& c, const std::string& prefix) {
  absl::Status st;
  std::string flag_prefix(prefix);
  std::string cert = ReadPem(c.cert_file, &st, flag_prefix + "cert-file");
  std::string key = st.ok() ? ReadPem(c.key_file, &st, flag_prefix + "key-file") : "";
  if (!st.ok()) return st;
  BIO* cb = BIO_new_mem_buf(cert.data(), static_cast<int>(cert.size()));
  X509* x = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  BIO* kb = BIO_new_mem_buf(key.data(), static_cast<int>(key.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  BIO_free(kb);
  if (x == nullptr) {
    st =
        Invalid(absl::StrCat("--", prefix, "cert-file ", c.cert_file, " holds no PEM certificate"));
  } else if (k == nullptr) {
    st = Invalid(absl::StrCat("--", prefix, "key-file ", c.key_file, " holds no PEM private key"));
  } else if (X509_check_private_key(x, k) != 1) {
    st = Invalid(absl::StrCat("--", prefix, "key-file ", c.key_file, " does not match --", prefix,
                              "cert-file ", c.cert_file));
  }
  X509_free(x);
  EVP_PKEY_free(k);
  ERR_clear_error();
  if (!st.ok() || c.trusted_ca_file.empty()) return st;
  std::string ca = ReadPem(c.trusted_ca_file, &st, flag_prefix + "trusted-ca-file");
  if (!st.ok()) return st;
  BIO* ab = BIO_new_mem_buf(ca.data(), static_cast<int>(ca.size()));
  X509* root = PEM_read_bio_X509(ab, nullptr, nullptr, nullptr);
  BIO_free(ab);
  if (root == nullptr) {
    st = Invalid(absl::StrCat("--", prefix, "trusted-ca-file ", c.trusted_ca_file,
                              " holds no PEM certificate"));
  }
  X509_free(root);
  ERR_clear_error();
  return st;
}

// Writes `data` to `path` (mode 0600 for keys) through a temporary file and a rename.
absl::Status WriteFileAtomically(const std::string& path, const std::string& data, bool secret) {
  base::Env* env = base::Env::Default();
  std::string tmp = path + ".tmp";
  auto file = env->NewWritableFile(tmp);
  if (!file.ok()) return file.status();
  if (secret && chmod(tmp.c_str(), 0600) != 0) return absl::InternalError("cannot chmod " + tmp);
  if (absl::Status s = (*file)->Append(data); !s.ok()) return s;
  if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
  file->reset();
  return env->RenameFile(tmp, path);
}

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

// A self-signed ECDSA P-256 certificate (as etcd's) for the hosts of `urls`, plus 127.0.0.1 and
// localhost, written as cert.pem and key.pem in `dir`.
absl::Status GenerateSelfSigned(const std::string& dir, const std::vector<std::string>& urls,
                                std::string* cert_path, std::string* key_path) {
  *cert_path = dir + "/cert.pem";
  *key_path = dir + "/key.pem";
  base::Env* env = base::Env::Default();
  if (env->FileExists(*cert_path) && env->FileExists(*key_path)) return absl::OkStatus();
  if (absl::Status s = env->CreateDirs(dir); !s.ok()) return s;
  std::vector<std::string> alt = {"IP:127.0.0.1", "DNS:localhost"};
  for (const auto& url : urls) {
    auto parsed = base::ParseUrl(url);
    if (!parsed.ok()) continue;
    std::string host = parsed->host;
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    bool ip = host.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos &&
              host.find_first_of(".:") != std::string::npos;
    std::string entry = (ip ? "IP:" : "DNS:") + host;
    if (std::find(alt.begin(), alt.end(), entry) == alt.end()) alt.push_back(entry);
  }
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  BIO* key_bio = BIO_new(BIO_s_mem());
  BIO* cert_bio = BIO_new(BIO_s_mem());
  absl::Status st;
  unsigned char serial_bytes[16];
  BIGNUM* serial = nullptr;
  X509V3_CTX v3;
  if (key == nullptr || x == nullptr || RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1 ||
      (serial = BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr)) == nullptr) {
    st = absl::InternalError("auto-tls: " + OpenSslError());
  } else {
    X509_set_version(x, X509_VERSION_3);
    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x));
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), kAutoTlsValiditySeconds);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("cairn"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
    const std::pair<int, std::string> exts[] = {
        {NID_subject_alt_name, absl::StrJoin(alt, ",")},
        {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
        {NID_ext_key_usage, "serverAuth,clientAuth"},
        {NID_basic_constraints, "critical,CA:FALSE"}};
    for (const auto& [nid, value] : exts) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
      if (ext == nullptr || X509_add_ext(x, ext, -1) != 1) st = absl::InternalError(OpenSslError());
      X509_EXTENSION_free(ext);
    }
    if (st.ok() &&
        (X509_sign(x, key, EVP_sha256()) == 0 ||
         PEM_write_bio_PrivateKey(key_bio, key, nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
         PEM_write_bio_X509(cert_bio, x) != 1)) {
      st = absl::InternalError("auto-tls: " + OpenSslError());
    }
  }
  if (st.ok()) st = WriteFileAtomically(*key_path, BioString(key_bio), /*secret=*/true);
  if (st.ok()) st = WriteFileAtomically(*cert_path, BioString(cert_bio), /*secret=*/false);
  BN_free(serial);
  BIO_free(key_bio);
  BIO_free(cert_bio);
  X509_free(x);
  EVP_PKEY_free(key);
  if (st.ok()) {
    CAIRN_LOG(kInfo, "tls") << "auto-tls: generated a self-signed certificate in " << dir;
  }
  return st;
}

// Refuses a peer whose certificate's common name is not the allowed one (--peer-cert-allowed-cn).
// Runs after the chain was verified against the trusted CA.
class AllowedCommonNameVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit AllowedCommonNameVerifier(std::string allowed) : allowed_(std::move(allowed)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    grpc::string_ref cn = request->common_name();
    std::string got(cn.data(), cn.size());
    if (got == allowed_) {
      *sync_status = grpc::Status::OK;
    } else {
      std::string why = "peer certificate CN \"" + got + "\" is not the allowed CN \"" + allowed_ +
                        "\" (--peer-cert-allowed-cn)";
      CAIRN_LOG(kWarn, "tls") << "refused a peer connection: " << why;
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, why);
    }
    return true;  // answered synchronously
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  const std::string allowed_;
};

}  // namespace

bool IsHttpsUrl(std::string_view url) { return url.starts_with(kHttps); }

std::string OpenSslCipherList(const std::vector<std::string>& cipher_suites) {
  std::vector<std::string> names;
  for (const auto& s : cipher_suites) names.push_back(CipherSuiteNames().at(s));
  return absl::StrJoin(names, ":");
}

absl::Status PrepareTls(const std::vector<std::string>& urls, const std::string& prefix,
                        TlsConfig* config) {
  bool https =
      std::any_of(urls.begin(), urls.end(), [](const std::string& u) { return IsHttpsUrl(u); });
  if (!https && !config->auto_tls && config->cert_file.empty()) return absl::OkStatus();
  for (const auto& s : config->cipher_suites) {
    if (CipherSuiteNames().count(s) == 0) {
      return Invalid(absl::StrCat("unexpected TLS cipher suite \"", s, "\" (--cipher-suites)"));
    }
  }
  if (absl::Status s = CheckVersion("tls-min-version", config->min_version); !s.ok()) return s;
  if (absl::Status s = CheckVersion("tls-max-version", config->max_version); !s.ok()) return s;
  if (config->min_version == "TLS1.3" && config->max_version == "TLS1.2") {
    return Invalid("--tls-min-version is greater than --tls-max-version");
  }
  if (config->cert_file.empty() && config->auto_tls) {
    if (config->auto_tls_dir.empty()) return Invalid("auto-tls needs a directory");
    absl::Status s =
        GenerateSelfSigned(config->auto_tls_dir, urls, &config->cert_file, &config->key_file);
    if (!s.ok()) return s;
  }
  if (config->cert_file.empty() || config->key_file.empty()) {
    if (!https) return absl::OkStatus();
    return Invalid(absl::StrCat("https URLs need --", prefix, "cert-file and --", prefix,
                                "key-file (or --", prefix, "auto-tls)"));
  }
  if (config->client_cert_auth && config->trusted_ca_file.empty()) {
    return Invalid(
        absl::StrCat("--", prefix, "client-cert-auth needs --", prefix, "trusted-ca-file"));
  }
  if (!config->allowed_cn.empty() && config->trusted_ca_file.empty()) {
    return Invalid("--peer-cert-allowed-cn needs --peer-trusted-ca-file");
  }
  if (absl::Status s = CheckFiles(*config, prefix); !s.ok()) return s;
  return ApplyProcessPolicy(*config);
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentialsFor(std::string_view url,
                                                              const TlsConfig& config) {
  if (!IsHttpsUrl(url)) return grpc::InsecureServerCredentials();
  namespace gx = grpc::experimental;
  // With a trusted CA, client certificates are required and verified (etcd 3.4 verifies them as
  // soon as it has a trusted CA file); without one, none is asked for.
  bool verify = !config.trusted_ca_file.empty();
  auto provider = std::make_shared<gx::FileWatcherCertificateProvider>(
      config.key_file, config.cert_file, config.trusted_ca_file, kCertRefreshSeconds);
  gx::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (verify) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  if (verify && !config.allowed_cn.empty()) {
    options.set_certificate_verifier(
        gx::ExternalCertificateVerifier::Create<AllowedCommonNameVerifier>(config.allowed_cn));
  }
  return gx::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(std::string_view url,
                                                                const TlsConfig& config) {
  if (!IsHttpsUrl(url)) return grpc::InsecureChannelCredentials();
  namespace gx = grpc::experimental;
  gx::TlsChannelCredentialsOptions options;
  if (!config.cert_file.empty()) {
    options.set_certificate_provider(std::make_shared<gx::FileWatcherCertificateProvider>(
        config.key_file, config.cert_file, config.trusted_ca_file, kCertRefreshSeconds));
    options.watch_identity_key_cert_pairs();
    if (!config.trusted_ca_file.empty()) options.watch_root_certs();
  }
  if (config.trusted_ca_file.empty() && config.auto_tls) {
    // etcd's peer auto-tls: self-signed certificates that nobody can verify.
    options.set_verify_server_certs(false);
    options.set_check_call_host(false);
    options.set_certificate_verifier(std::make_shared<gx::NoOpCertificateVerifier>());
  } else {
    options.set_certificate_verifier(std::make_shared<gx::HostNameCertificateVerifier>());
  }
  return gx::TlsCredentials(options);
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

}  // namespace cairn::transport
