// The in-process entry point of the client: a Client whose channel is given by the caller, e.g.
// grpc::Server::InProcessChannel() of a server in the same process. The server's own recipe
// services (server/api) use it so that their calls pass the same services and request gate as
// any client's. Not part of the SDK's public API (it names gRPC types, which cairn/*.h must not);
// docs/dependencies.md lists who may include it.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "cairn/client.h"
#include "cairn/options.h"

namespace cairn::internal {

struct ClientFactory {
  // A client with `channel` as its only endpoint. options.endpoints, tls and auto_sync_interval
  // are ignored; nothing is dialed (the channel's server must be running; calls made before it
  // serves fail with UNAVAILABLE and are retried per the retry policy). With options.username
  // set, authenticates at once (errors as Client::Connect). INVALID_ARGUMENT for a null channel.
  // The Client is destroyed as any other (before the channel's server is shut down, so that its
  // streams end first). A non-empty `fixed_token` is sent with every call as its auth token and
  // never refreshed (the server's own identity for its recipe services; see server/api).
  static absl::StatusOr<std::unique_ptr<Client>> ConnectInProcess(
      std::shared_ptr<grpc::Channel> channel, const ClientOptions& options = {},
      const std::string& fixed_token = "");
};

}  // namespace cairn::internal
