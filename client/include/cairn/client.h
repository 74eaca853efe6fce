// The Cairn client: one client for any etcd v3 server (etcd 3.4+, cairn).
//
//   cairn::ClientOptions opts;
//   opts.endpoints = {"127.0.0.1:2379", "127.0.0.1:22379"};
//   auto client = cairn::Client::Connect(opts);
//   if (!client.ok()) return client.status();
//   auto put = (*client)->kv().Put("k", "v");
//
// A Client owns its connections (one gRPC channel per endpoint), one watch stream and one lease
// keepalive stream, and a few internal threads (retry timers, watch, keepalive, auto-sync). It
// fails over between endpoints: a call that meets UNAVAILABLE moves the client to the next
// endpoint (and is retried per the retry policy of docs/client.md).
//
// Thread-safe: every method may be called from any thread or fiber. The API handles returned by
// kv()/watch()/... share the client's state. Destroying the Client closes it: watches end
// (without a final callback), keepalives stop, pending retries finish with CANCELLED ("client
// closed"), and calls made later through surviving handles fail the same way. Do not destroy a
// Client from inside one of its own callbacks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/auth.h"
#include "cairn/cluster.h"
#include "cairn/errors.h"
#include "cairn/future.h"
#include "cairn/kv.h"
#include "cairn/lease.h"
#include "cairn/maintenance.h"
#include "cairn/options.h"
#include "cairn/types.h"
#include "cairn/watch.h"

namespace cairn {

namespace internal {
struct ClientFactory;  // builds in-process clients (client/src/in_process.h)
}  // namespace internal

class Client {
 public:
  // Creates the client. Fails with INVALID_ARGUMENT for bad options (no endpoints, unreadable
  // TLS files), with UNAVAILABLE/DEADLINE_EXCEEDED when wait_for_connection is set and no
  // endpoint answered within dial_timeout, and with the server's error when authentication
  // fails.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();

  Kv kv() const { return Kv(core_); }
  WatchClient watch() const { return WatchClient(core_); }
  LeaseClient lease() const { return LeaseClient(core_); }
  ClusterClient cluster() const { return ClusterClient(core_); }
  MaintenanceClient maintenance() const { return MaintenanceClient(core_); }
  AuthClient auth() const { return AuthClient(core_); }

  // The endpoints in use, and the one calls currently go to first.
  std::vector<std::string> endpoints() const;
  std::string current_endpoint() const;
  // Replaces the endpoint list (streams move when their endpoint disappears).
  void SetEndpoints(std::vector<std::string> endpoints);
  // Refreshes the endpoint list from MemberList once (what auto_sync_interval does periodically).
  absl::Status Sync(const CallOptions& call = {});

  const ClientOptions& options() const;

 private:
  friend struct internal::ClientFactory;
  explicit Client(std::shared_ptr<internal::Core> core) : core_(std::move(core)) {}
  std::shared_ptr<internal::Core> core_;
};

}  // namespace cairn
