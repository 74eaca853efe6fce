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
//  - kRoundRobin: each call the next instance in key (id) order;
//  - kRandom: uniformly at random;
//  - kSticky: the same instance as long as it is registered and not marked down.
// MarkDown(address, duration) excludes an instance (e.g. after errors calling it) until the
// duration passes or it registers again.
//
// A registration made with RegisterEndpoint lives exactly as long as its session: a lost session
// drops it for good. ServiceRegistration instead keeps an instance registered across session
// losses (Curator's ServiceDiscovery re-registering after a reconnect): when its session is lost
// (lease expired or revoked, or the server unreachable for longer than the TTL), it creates a new
// session and registers again, retrying until the server answers or it is closed.
//
// Thread-safe. Fiber-aware.
#pragma once

#include <atomic>
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
#include "cairn/recipes/async.h"
#include "cairn/recipes/prefix_cache.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

struct ServiceEndpoint {
  std::string address;  // e.g. "10.0.0.7:8080"; no '/' unless `id` is set
  std::string metadata;
  // The instance's name in its key "<service>/<id>"; empty means the address. Not part of the
  // JSON value: ServiceResolver fills it from the key, DecodeEndpoint leaves it empty.
  std::string id = {};
  bool operator==(const ServiceEndpoint&) const = default;
};

// The JSON value stored for an endpoint, and its parse (INVALID_ARGUMENT for a value that is not
// a JSON object with a string "Addr").
std::string EncodeEndpoint(const ServiceEndpoint& endpoint);
absl::StatusOr<ServiceEndpoint> DecodeEndpoint(const std::string& json);

// Registers `endpoint` under "<service>/<id or address>" on the session's lease.
// INVALID_ARGUMENT for an empty service or address, or a key name (id, else address) containing
// '/'; the session's status when it ended. Registering the same id again replaces the value.
absl::Status RegisterEndpoint(const Session& session, const std::string& service,
                              const ServiceEndpoint& endpoint, const CallOptions& call = {});
// RegisterEndpoint's async form (one Put; no thread is blocked).
Future<Completed> RegisterEndpointAsync(const Session& session, const std::string& service,
                                        const ServiceEndpoint& endpoint,
                                        const CallOptions& call = {});
// Removes the registration "<service>/<id_or_address>" (OK if absent).
absl::Status UnregisterEndpoint(const Kv& kv, const std::string& service,
                                const std::string& id_or_address, const CallOptions& call = {});

struct ServiceRegistrationOptions {
  // TTL of each session's lease (> 0): how long the registration outlives a dead process.
  int64_t ttl_seconds = 10;
  // Called after each (re-)registration with the lease it is bound to, and after each loss with
  // the session's end reason; on the registration's thread (or inside Start for the first
  // registration), one at a time; keep them quick.
  std::function<void(LeaseId lease)> on_registered;
  std::function<void(const absl::Status& why)> on_lost;
};

// Keeps one endpoint registered until Close(). Thread-safe; the Client must outlive it.
class ServiceRegistration {
 public:
  // Registers at once (under a new session) and then watches the session. Errors:
  // INVALID_ARGUMENT as RegisterEndpoint or for ttl_seconds <= 0; the server's (the first
  // registration is not retried); DEADLINE_EXCEEDED / CANCELLED per `call`.
  static absl::StatusOr<std::unique_ptr<ServiceRegistration>> Start(
      const Client& client, std::string service, ServiceEndpoint endpoint,
      ServiceRegistrationOptions options = {}, const CallOptions& call = {});
  // Close()s.
  ~ServiceRegistration();
  ServiceRegistration(const ServiceRegistration&) = delete;
  ServiceRegistration& operator=(const ServiceRegistration&) = delete;

  // Stops re-registering and deregisters: revokes the current session's lease, which deletes the
  // key (a failed revoke, e.g. with the server down, leaves the key to expire after the TTL and
  // returns the error). Idempotent.
  absl::Status Close(const CallOptions& call = {});
  // Whether the endpoint is registered now (as far as this process knows).
  bool registered() const;
  // How many times it was registered: 1 after Start, +1 after each re-registration.
  int64_t registrations() const;
  // OK while registered; otherwise why not (the loss, or the last failed attempt).
  absl::Status status() const;

  struct State;  // internal

 private:
  ServiceRegistration() = default;
  std::shared_ptr<State> state_;
};

enum class PickPolicy { kRoundRobin, kRandom, kSticky };

class ServiceResolver {
 public:
  // INVALID_ARGUMENT for an empty service; otherwise as PrefixCache::Start.
  static absl::StatusOr<std::unique_ptr<ServiceResolver>> Start(const Client& client,
                                                                std::string service,
                                                                PickPolicy policy,
                                                                const CallOptions& call = {});

  // Registered instances (including those marked down), in key (id) order, with their ids.
  // Values that do not parse are skipped.
  std::vector<ServiceEndpoint> Endpoints() const;
  // One instance per the policy. UNAVAILABLE when none is registered and up.
  absl::StatusOr<ServiceEndpoint> Pick();
  // Excludes `address` from Pick until `duration` passes (or it registers again).
  void MarkDown(const std::string& address, std::chrono::milliseconds duration);
  // Calls `cb` with the instance list (as Endpoints()) after each change to the registrations,
  // driven by the resolver's watch (after a resync too), in order, on a client thread, never two
  // at once; keep it quick and do not call RemoveListener from it. Returns an id.
  uint64_t AddListener(std::function<void(const std::vector<ServiceEndpoint>&)> cb);
  // When this returns the listener is not running and will not run again.
  void RemoveListener(uint64_t id);
  // Waits until `pred` holds for the instance list. DEADLINE_EXCEEDED / CANCELLED. `pred` is
  // called on the caller's thread and on the resolver's watch deliveries: keep it quick, and do
  // not call the resolver's Wait* from it.
  absl::Status WaitFor(const std::function<bool(const std::vector<ServiceEndpoint>&)>& pred,
                       const CallOptions& call = {});
  // WaitFor's async form (see async.h), holding no thread: the resolver's watch deliveries check
  // `pred` and complete it; the recipes' timer ends it at the deadline. CANCELLED ("resolver
  // destroyed") if the resolver is destroyed first.
  Future<Completed> WaitForAsync(std::function<bool(const std::vector<ServiceEndpoint>&)> pred,
                                 const CallOptions& call = {});

  // Stops the watch; pending waits end with CANCELLED.
  ~ServiceResolver();

 private:
  // A pending WaitForAsync: completed by CheckWaiters, or ended by its deadline/cancel (`done`).
  struct Waiter {
    std::function<bool(const std::vector<ServiceEndpoint>&)> pred;
    Promise<bool> promise;
    std::shared_ptr<std::atomic<bool>> done;
  };
  ServiceResolver() = default;
  absl::StatusOr<ServiceEndpoint> Decode(const KeyValue& kv) const;
  // The one cache listener of the waits: completes those whose predicate now holds, drops ended
  // ones.
  void CheckWaiters();
  std::unique_ptr<PrefixCache> cache_;
  std::mutex waiters_mu_;  // taken before the cache's locks (Endpoints)
  std::vector<Waiter> waiters_;
  std::string prefix_;
  PickPolicy policy_ = PickPolicy::kRoundRobin;
  std::mutex mu_;
  size_t next_ = 0;
  std::optional<std::string> sticky_;
  std::map<std::string, Clock::time_point> down_until_;
  std::map<std::string, Revision> down_at_revision_;
};

}  // namespace cairn::recipes
