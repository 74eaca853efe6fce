// TLS for the member's listeners and peer channels (docs/security.md): TlsConfig (etcd's flags)
// turned into gRPC credentials backed by OpenSSL.
//
// - https:// listeners get gRPC TLS server credentials whose certificate, key and trusted CA come
//   from a FileWatcherCertificateProvider: the files are re-read every kCertRefreshSeconds, so a
//   rotated certificate is served to new connections without a restart.
// - http:// listeners and channels stay plaintext.
// - A peer CN allow-list (--peer-cert-allowed-cn) is a post-handshake certificate verifier.
// - --cipher-suites and --tls-min/max-version are process-wide (gRPC 1.51 has no per-credential
//   knob for them): they are applied once, before the first TLS credentials are built.
// Thread-safe: every function may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/status/status.h"
#include "server/transport/tls_config.h"

namespace cairn::transport {

// How often a FileWatcherCertificateProvider re-reads the certificate, key and CA files.
inline constexpr unsigned kCertRefreshSeconds = 1;

// True for an https:// URL.
bool IsHttpsUrl(std::string_view url);

// Makes `config` ready to serve `urls` (and, for peers, to dial https peers): when any URL is
// https or auto_tls is on, a certificate must be configured or is generated (auto_tls, in
// auto_tls_dir, reused when already there), the files must load, the key must match the
// certificate, the cipher and version names must be known; then the process-wide TLS settings
// are applied. Without any https URL and without auto_tls it does nothing.
// Errors: kInvalidArgument naming the flag or file at fault.
// `flag_prefix` is "" for the client set and "peer-" for the peer set (for the messages).
absl::Status PrepareTls(const std::vector<std::string>& urls, const std::string& flag_prefix,
                        TlsConfig* config);

// The oldest error on OpenSSL's error queue as text (the queue is then cleared), or
// "unknown OpenSSL error".
std::string OpenSslError();

// --cipher-suites (IANA names, checked by PrepareTls) as an OpenSSL cipher list ("" for none),
// for TLS that cairn terminates itself (the HTTP gateway on https client URLs).
std::string OpenSslCipherList(const std::vector<std::string>& cipher_suites);

// The credentials of a listener on `url`: plaintext for http://, TLS per `config` (prepared by
// PrepareTls) for https://.
std::shared_ptr<grpc::ServerCredentials> ServerCredentialsFor(std::string_view url,
                                                              const TlsConfig& config);

// The credentials of a channel to a peer listening on `url`: plaintext for http://; for https://
// the peer TLS config's certificate as client certificate and its trusted CA (system roots
// without one) to check the peer's server certificate and host name; auto-tls skips the check.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(std::string_view url,
                                                                const TlsConfig& config);

}  // namespace cairn::transport
