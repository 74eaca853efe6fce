#include "client/src/in_process.h"

#include <utility>

#include "client/src/core.h"

namespace cairn::internal {

absl::StatusOr<std::unique_ptr<Client>> ClientFactory::ConnectInProcess(
    std::shared_ptr<grpc::Channel> channel, const ClientOptions& options,
    const std::string& fixed_token) {
  auto core = Core::CreateInProcess(std::move(channel), options, fixed_token);
  if (!core.ok()) return core.status();
  return std::unique_ptr<Client>(new Client(*std::move(core)));
}

}  // namespace cairn::internal
