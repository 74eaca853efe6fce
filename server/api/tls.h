// TLS on the client URLs (docs/security.md): the listeners' credentials from the member's
// client TlsConfig (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth, --auto-tls),
// and the certificate identity of a call (etcd's CN-as-user under --client-cert-auth).
// Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "server/api/gateway/tls_context.h"
#include "server/etcdserver/server.h"

namespace cairn::api {

// One credentials object per URL of `listen_urls`, in order: plaintext for http://, TLS for
// https:// (auto-tls certificates go to <data_dir>/fixtures/client). Errors: kInvalidArgument
// when a https URL has no usable certificate or a TLS flag is wrong (transport::PrepareTls).
absl::StatusOr<std::vector<std::shared_ptr<grpc::ServerCredentials>>> ClientListenerCredentials(
    const etcdserver::ServerConfig& config, const std::vector<std::string>& listen_urls);

// The member's client TLS settings made ready for `urls` (transport::PrepareTls, with auto-tls's
// directory <data_dir>/fixtures/client filled in). Also what the member dials other members'
// client URLs with (the corruption check), as etcd dials with its client TLS info: its
// certificate as client certificate, its trusted CA for the server's certificate.
absl::StatusOr<transport::TlsConfig> ClientTls(const etcdserver::ServerConfig& config,
                                               const std::vector<std::string>& urls);

// The HTTP gateway's TLS context on https client URLs: the files and cipher suites of
// ClientTls(config, urls), so both sides of an https port serve the same certificate.
absl::StatusOr<std::unique_ptr<gateway::TlsContext>> GatewayTlsContext(
    const etcdserver::ServerConfig& config, const std::vector<std::string>& urls);

// The common name of the verified client certificate of the call's connection, or nullopt on a
// plaintext connection or when the client sent no certificate. The listener verifies the chain
// against --trusted-ca-file before any call, so a name returned here is authenticated: with
// --client-cert-auth it is the user of a call that carries no token, as in etcd.
std::optional<std::string> AuthenticatedCommonName(const grpc::ServerContextBase& context);

}  // namespace cairn::api
