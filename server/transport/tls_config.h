// TlsConfig: the TLS settings of one listener set (client URLs or peer URLs), as etcd's flags
// give them (docs/security.md). A plain struct without gRPC types, so the member's ServerConfig
// can carry it; server/transport/tls.h turns it into gRPC credentials.
#pragma once

#include <string>
#include <vector>

namespace cairn::transport {

struct TlsConfig {
  // --cert-file / --key-file (--peer-cert-file / --peer-key-file): PEM certificate chain and key
  // served on https URLs and, for peers, presented to the other members. Re-read when they change.
  std::string cert_file;
  std::string key_file;
  // --trusted-ca-file (--peer-trusted-ca-file): PEM bundle that client (peer) certificates must
  // chain to; for peers also the roots the other members' server certificates are checked with.
  std::string trusted_ca_file;
  // --client-cert-auth (--peer-client-cert-auth): a connection without a certificate signed by
  // trusted_ca_file is refused in the handshake.
  bool client_cert_auth = false;
  // --auto-tls (--peer-auto-tls): without cert_file, a self-signed certificate and key are
  // generated in auto_tls_dir (etcd's <data-dir>/fixtures/{client,peer}); peers then skip the
  // verification of each other's server certificates, as etcd does.
  bool auto_tls = false;
  std::string auto_tls_dir;
  // --peer-cert-allowed-cn (peer set only): when not empty, a peer's client certificate must have
  // this common name.
  std::string allowed_cn;
  // Process-wide settings (etcd's flags apply to both sets; the member takes them from the
  // first set that serves https): --cipher-suites (TLS 1.2 suites, IANA/Go names) and
  // --tls-min-version / --tls-max-version ("TLS1.2" or "TLS1.3"; empty: gRPC's own 1.2 and 1.3).
  std::vector<std::string> cipher_suites;
  std::string min_version;
  std::string max_version;
};

}  // namespace cairn::transport
