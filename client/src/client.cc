#include "cairn/client.h"

#include "client/src/core.h"

namespace cairn {

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  auto core = internal::Core::Create(options);
  if (!core.ok()) return core.status();
  return std::unique_ptr<Client>(new Client(*std::move(core)));
}

Client::~Client() { core_->Shutdown(); }

std::vector<std::string> Client::endpoints() const { return core_->Endpoints(); }

std::string Client::current_endpoint() const { return core_->Current()->address; }

void Client::SetEndpoints(std::vector<std::string> endpoints) { core_->SetEndpoints(endpoints); }

absl::Status Client::Sync(const CallOptions& call) {
  auto members = cluster().MemberList(call);
  if (!members.ok()) return members.status();
  std::vector<std::string> eps;
  for (const auto& m : members->members) {
    for (const auto& u : m.client_urls) eps.push_back(u);
  }
  if (eps.empty()) return absl::FailedPreconditionError("no member has client URLs");
  core_->SetEndpoints(eps);
  return absl::OkStatus();
}

const ClientOptions& Client::options() const { return core_->options(); }

}  // namespace cairn
