// Service discovery: instances register under a session; clients resolve them from a
// watch-backed cache and pick one per call (Curator's ServiceDiscovery / ServiceProvider; the
// key layout and value format of etcd's naming/endpoints package).
//
// Key layout: "<service>/<address>" = {"Addr":"<address>","Metadata":"<metadata>"} (JSON, as
// etcd's endpoints.Manager writes it; Metadata is a JSON string here, and null when empty). A
// registration is bound to its session's lease: when the instance's process dies or its session
// is lost, the key expires and resolvers drop the instance.
//
// ServiceResolver keeps the instance list current through a PrefixCache (no polling; resyncs
// after compaction). Pick() chooses among the instances not marked down:
//  - kRoundRobin: each call the next instance in address order;
//  - kRandom: uniformly at random;
//  - kSticky: the same instance as long as it is registered and not marked down.
// MarkDown(address, duration) excludes an instance (e.g. after errors calling it) until the
// duration passes or it registers again.
//
// Thread-safe. Fiber-aware.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/client.h"
#include "cairn/recipes/prefix_cache.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

struct ServiceEndpoint {
  std::string address;  // e.g. "10.0.0.7:8080"; no '/'
  std::string metadata;
  bool operator==(const ServiceEndpoint&) const = default;
};

// The JSON value stored for an endpoint, and its parse (INVALID_ARGUMENT for a value that is not
// a JSON object with a string "Addr").
std::string EncodeEndpoint(const ServiceEndpoint& endpoint);
absl::StatusOr<ServiceEndpoint> DecodeEndpoint(const std::string& json);

// Registers `endpoint` under `service` on the session's lease. INVALID_ARGUMENT for an empty
// service or address, or an address containing '/'; the session's status when it ended.
// Registering the same address again replaces its metadata.
absl::Status RegisterEndpoint(const Session& session, const std::string& service,
                              const ServiceEndpoint& endpoint, const CallOptions& call = {});
// Removes the registration (OK if absent).
absl::Status UnregisterEndpoint(const Kv& kv, const std::string& service,
                                const std::string& address, const CallOptions& call = {});

enum class PickPolicy { kRoundRobin, kRandom, kSticky };

class ServiceResolver {
 public:
  // INVALID_ARGUMENT for an empty service; otherwise as PrefixCache::Start.
  static absl::StatusOr<std::unique_ptr<ServiceResolver>> Start(const Client& client,
                                                                std::string service,
                                                                PickPolicy policy,
                                                                const CallOptions& call = {});

  // Registered instances (including those marked down), in address order. Values that do not
  // parse are skipped.
  std::vector<ServiceEndpoint> Endpoints() const;
  // One instance per the policy. UNAVAILABLE when none is registered and up.
  absl::StatusOr<ServiceEndpoint> Pick();
  // Excludes `address` from Pick until `duration` passes (or it registers again).
  void MarkDown(const std::string& address, std::chrono::milliseconds duration);
  // Waits until `pred` holds for the instance list. DEADLINE_EXCEEDED / CANCELLED.
  absl::Status WaitFor(const std::function<bool(const std::vector<ServiceEndpoint>&)>& pred,
                       const CallOptions& call = {});

 private:
  ServiceResolver() = default;
  std::unique_ptr<PrefixCache> cache_;
  std::string prefix_;
  PickPolicy policy_ = PickPolicy::kRoundRobin;
  std::mutex mu_;
  size_t next_ = 0;
  std::optional<std::string> sticky_;
  std::map<std::string, Clock::time_point> down_until_;
  std::map<std::string, Revision> down_at_revision_;
};

}  // namespace cairn::recipes
