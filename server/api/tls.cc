#include "server/api/tls.h"

#include <grpcpp/security/auth_context.h>

#include "server/base/clock.h"
#include "server/base/env.h"
#include "server/transport/tls.h"

namespace cairn::api {

absl::StatusOr<transport::TlsConfig> ClientTls(const etcdserver::ServerConfig& config,
                                               const std::vector<std::string>& urls) {
  transport::TlsConfig tls = config.client_tls;
  if (tls.auto_tls_dir.empty()) tls.auto_tls_dir = config.data_dir + "/fixtures/client";
  if (absl::Status s = transport::PrepareTls(urls, "", &tls); !s.ok()) return s;
  return tls;
}

absl::StatusOr<std::vector<std::shared_ptr<grpc::ServerCredentials>>> ClientListenerCredentials(
    const etcdserver::ServerConfig& config, const std::vector<std::string>& listen_urls) {
  auto tls = ClientTls(config, listen_urls);
  if (!tls.ok()) return tls.status();
  std::vector<std::shared_ptr<grpc::ServerCredentials>> out;
  for (const auto& url : listen_urls) out.push_back(transport::ServerCredentialsFor(url, *tls));
  return out;
}

absl::StatusOr<std::unique_ptr<gateway::TlsContext>> GatewayTlsContext(
    const etcdserver::ServerConfig& config, const std::vector<std::string>& urls) {
  auto tls = ClientTls(config, urls);
  if (!tls.ok()) return tls.status();
  gateway::TlsFiles files;
  files.cert_file = tls->cert_file;
  files.key_file = tls->key_file;
  files.trusted_ca_file = tls->trusted_ca_file;
  files.cipher_list = transport::OpenSslCipherList(tls->cipher_suites);
  return gateway::TlsContext::Create(std::move(files), base::Env::Default(), base::Clock::Real());
}

std::optional<std::string> AuthenticatedCommonName(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  // A TLS connection's peer is "authenticated" only when it presented a verified certificate.
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return std::nullopt;
  std::vector<grpc::string_ref> names = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (names.empty() || names.front().empty()) return std::nullopt;
  return std::string(names.front().data(), names.front().size());
}

}  // namespace cairn::api
