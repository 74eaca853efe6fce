#include "server/api/gateway/tls_context.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>

#include <algorithm>

#include "server/base/check.h"
#include "server/base/logging.h"
#include "server/transport/tls.h"

namespace cairn::api::gateway {

using transport::OpenSslError;

namespace {

// gRPC 1.51's default TLS 1.2 suites (GRPC_SSL_CIPHER_SUITES unset), so both sides of an https
// port offer the same ones.
constexpr char kGrpcDefaultCipherList[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384";
constexpr unsigned char kHttp11[] = "http/1.1";

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
BioPtr MemBio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// Chooses "http/1.1" when the client offers it; otherwise no ALPN (the listener sends only
// clients offering it, or offering nothing, to the gateway).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof(kHttp11) - 1, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

absl::StatusOr<std::shared_ptr<SSL_CTX>> Build(const TlsFiles& files, const std::string& cert,
                                               const std::string& key, const std::string& ca) {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return absl::InternalError("SSL_CTX_new: " + OpenSslError());
  SSL_CTX* c = ctx.get();
  // As gRPC: TLS 1.2 and 1.3 (narrowed by --tls-min/max-version through system_default).
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  const std::string list = files.cipher_list.empty() ? kGrpcDefaultCipherList : files.cipher_list;
  if (SSL_CTX_set_cipher_list(c, list.c_str()) != 1) {
    return absl::InvalidArgumentError("--cipher-suites: " + OpenSslError());
  }
  BioPtr cb = MemBio(cert);
  X509* leaf = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr || SSL_CTX_use_certificate(c, leaf) != 1) {
    X509_free(leaf);
    return absl::InvalidArgumentError("--cert-file " + files.cert_file + ": " + OpenSslError());
  }
  X509_free(leaf);
  while (X509* more = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr)) {
    SSL_CTX_add0_chain_cert(c, more);  // takes ownership
  }
  ERR_clear_error();  // the end of the chain reads as an error
  BioPtr kb = MemBio(key);
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr);
  bool key_ok =
      pkey != nullptr && SSL_CTX_use_PrivateKey(c, pkey) == 1 && SSL_CTX_check_private_key(c) == 1;
  EVP_PKEY_free(pkey);
  if (!key_ok) {
    return absl::InvalidArgumentError("--key-file " + files.key_file + ": " + OpenSslError());
  }
  if (!files.trusted_ca_file.empty()) {
    BioPtr ab = MemBio(ca);
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    int roots = 0;
    while (X509* root = PEM_read_bio_X509(ab.get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, root);
      SSL_CTX_add_client_CA(c, root);
      X509_free(root);
      ++roots;
    }
    ERR_clear_error();
    if (roots == 0) {
      return absl::InvalidArgumentError("--trusted-ca-file " + files.trusted_ca_file +
                                        " holds no PEM certificate");
    }
    // As gRPC's side (transport::ServerCredentialsFor): with a trusted CA, a client certificate
    // is required and verified.
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  static constexpr unsigned char kSessionContext[] = "cairn-gateway";
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof(kSessionContext) - 1);
  SSL_CTX_set_alpn_select_cb(c, SelectAlpn, nullptr);
  return ctx;
}

// The ClientHello callback of the peek: records the ALPN extension, then aborts the handshake.
int OnClientHello(SSL* ssl, int* alert, void* /*arg*/) {
  auto* hello = static_cast<ClientHello*>(SSL_get_app_data(ssl));
  hello->kind = HelloKind::kTls;
  const unsigned char* ext = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                &len) == 1) {
    hello->has_alpn = true;
    // RFC 7301 3.1: a 2-byte list length, then 1-byte-length-prefixed names.
    if (len >= 2) {
      size_t end = std::min(len, 2 + ((static_cast<size_t>(ext[0]) << 8) | ext[1]));
      for (size_t i = 2; i < end;) {
        size_t n = ext[i];
        if (n == 0 || i + 1 + n > end) break;
        hello->alpn.emplace_back(reinterpret_cast<const char*>(ext + i + 1), n);
        i += 1 + n;
      }
    }
  }
  *alert = SSL_AD_HANDSHAKE_FAILURE;
  return SSL_CLIENT_HELLO_ERROR;
}

SSL_CTX* PeekContext() {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_server_method());
    CAIRN_CHECK(c != nullptr) << "SSL_CTX_new: " << OpenSslError();
    SSL_CTX_set_client_hello_cb(c, OnClientHello, nullptr);
    return c;
  }();
  return ctx;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Create(TlsFiles files, base::Env* env,
                                                               base::Clock* clock) {
  std::unique_ptr<TlsContext> t(new TlsContext(std::move(files), env, clock));
  absl::MutexLock lock(&t->mu_);
  bool changed = false;
  if (absl::Status s = t->Reload(&changed); !s.ok()) return s;
  t->checked_ms_ = clock->NowMs();
  return t;
}

absl::Status TlsContext::Reload(bool* changed) {
  std::string cert, key, ca;
  for (auto [path, out] : {std::pair{&files_.cert_file, &cert}, std::pair{&files_.key_file, &key},
                           std::pair{&files_.trusted_ca_file, &ca}}) {
    if (path->empty()) continue;
    if (absl::Status s = env_->ReadFile(*path, out); !s.ok()) {
      return absl::InvalidArgumentError("cannot read " + *path + ": " + std::string(s.message()));
    }
  }
  std::string pem = cert + '\0' + key + '\0' + ca;
  *changed = pem != pem_;
  if (!*changed) return absl::OkStatus();
  auto ctx = Build(files_, cert, key, ca);
  if (!ctx.ok()) return ctx.status();
  ctx_ = *std::move(ctx);
  pem_ = std::move(pem);
  return absl::OkStatus();
}

std::shared_ptr<SSL_CTX> TlsContext::Current() {
  absl::MutexLock lock(&mu_);
  int64_t now = clock_->NowMs();
  if (now - checked_ms_ >= kTlsReloadMs) {
    checked_ms_ = now;
    bool changed = false;
    absl::Status s = Reload(&changed);
    if (!s.ok()) {
      CAIRN_LOG(kWarn, "tls") << "keeping the previous gateway certificate: " << s.message();
    } else if (changed) {
      CAIRN_LOG(kInfo, "tls") << "gateway certificate reloaded from " << files_.cert_file;
    }
  }
  return ctx_;
}

ClientHello PeekClientHello(std::string_view bytes) {
  ClientHello hello;
  if (bytes.empty()) {
    hello.kind = HelloKind::kIncomplete;
    return hello;
  }
  // A TLS handshake record: content type 22, major version 3.
  if (static_cast<unsigned char>(bytes[0]) != 0x16 ||
      (bytes.size() >= 2 && static_cast<unsigned char>(bytes[1]) != 0x03)) {
    return hello;  // kNotTls
  }
  if (bytes.size() < 5) {
    hello.kind = HelloKind::kIncomplete;
    return hello;
  }
  size_t record = 5 + ((static_cast<size_t>(static_cast<unsigned char>(bytes[3])) << 8) |
                       static_cast<unsigned char>(bytes[4]));
  if (record > kClientHelloBytesMax) return hello;
  if (bytes.size() < record) {
    hello.kind = HelloKind::kIncomplete;
    return hello;
  }
  SSL* ssl = SSL_new(PeekContext());
  if (ssl == nullptr) {
    ERR_clear_error();
    return hello;
  }
  BIO* in = BIO_new_mem_buf(bytes.data(), static_cast<int>(record));
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);  // the SSL owns both
  SSL_set_accept_state(ssl);
  // The callback's state is per SSL object (the context is shared between threads).
  SSL_set_app_data(ssl, &hello);
  SSL_do_handshake(ssl);
  SSL_free(ssl);
  ERR_clear_error();
  // Not reached (kNotTls stays): a ClientHello OpenSSL cannot read from this one record.
  return hello;
}

std::optional<std::string> VerifiedPeerCommonName(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  std::optional<std::string> cn;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    X509_NAME* name = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i >= 0) {
      unsigned char* utf8 = nullptr;
      int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
      if (n > 0) cn = std::string(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
      OPENSSL_free(utf8);
    }
  }
  X509_free(cert);
  return cn;
}

}  // namespace cairn::api::gateway
