// TLS on the gateway side of https client URLs (docs/gateway.md, "HTTPS"): the server SSL_CTX
// the HTTP gateway terminates TLS with, and the ClientHello peek that routes a new connection
// to the gateway or to gRPC.
//
// TlsContext builds an OpenSSL SSL_CTX from the same files and flags as gRPC's TLS listener
// (--cert-file, --key-file, --trusted-ca-file, --cipher-suites; --tls-min/max-version reach it
// through OpenSSL's process-wide system_default, transport/tls.cc). With a trusted CA, a client
// certificate is required and verified, as on gRPC's side. The files are re-read (through
// base::Env) at most every kTlsReloadMs when a connection asks for the context, so a rotated
// certificate is served to new connections; a rotation caught half-written keeps the previous
// context until the files agree again. It offers ALPN "http/1.1" only.
//
// Thread safety: TlsContext is thread-safe; the free functions are pure.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/base/clock.h"
#include "server/base/env.h"

namespace cairn::api::gateway {

// How often, at most, the certificate, key and CA files are re-read for new connections (as
// gRPC's FileWatcherCertificateProvider, transport::kCertRefreshSeconds).
inline constexpr int64_t kTlsReloadMs = 1000;

struct TlsFiles {
  std::string cert_file;  // PEM chain, leaf first
  std::string key_file;
  std::string trusted_ca_file;  // "" : no client certificate asked for
  std::string cipher_list;      // OpenSSL names joined by ':' ("" : gRPC's default TLS 1.2 list)
};

class TlsContext {
 public:
  // Loads the files. Errors: kInvalidArgument naming the file that does not load.
  static absl::StatusOr<std::unique_ptr<TlsContext>> Create(TlsFiles files, base::Env* env,
                                                            base::Clock* clock);
  // The context for a new connection (re-reading the files when kTlsReloadMs has passed).
  std::shared_ptr<SSL_CTX> Current();

 private:
  TlsContext(TlsFiles files, base::Env* env, base::Clock* clock)
      : files_(std::move(files)), env_(env), clock_(clock) {}
  // Reads the files; `changed` is whether they differ from the loaded ones.
  absl::Status Reload(bool* changed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TlsFiles files_;
  base::Env* const env_;
  base::Clock* const clock_;
  absl::Mutex mu_;
  int64_t checked_ms_ ABSL_GUARDED_BY(mu_) = 0;
  std::string pem_ ABSL_GUARDED_BY(mu_);  // cert + key + CA as last loaded
  std::shared_ptr<SSL_CTX> ctx_ ABSL_GUARDED_BY(mu_);
};

// What the first bytes of a connection on a TLS port are.
enum class HelloKind {
  kIncomplete,  // a TLS record has started but is not all here yet
  kNotTls,      // not a TLS handshake record (a plaintext client)
  kTls,         // a complete ClientHello record
};
// The largest ClientHello record awaited (a TLS record's maximum plaintext length plus its
// 5-byte header); a larger record length is not a ClientHello cairn serves.
inline constexpr size_t kClientHelloBytesMax = 16384 + 5;

struct ClientHello {
  HelloKind kind = HelloKind::kNotTls;
  bool has_alpn = false;          // the ALPN extension is present
  std::vector<std::string> alpn;  // the protocols it offers, in order
};

// Classifies `bytes` (peeked, not consumed) and reads the ALPN list of a complete ClientHello
// with OpenSSL's ClientHello callback on a throwaway SSL object (the handshake is aborted there).
ClientHello PeekClientHello(std::string_view bytes);

// The common name of the peer's certificate when the handshake verified it; nullopt otherwise.
std::optional<std::string> VerifiedPeerCommonName(SSL* ssl);

}  // namespace cairn::api::gateway
