// Sample: service registration and a client-side resolver. Two instances register (each kept
// registered by a ServiceRegistration, which registers again if its session is lost); a client
// resolves them through a watch-backed resolver, spreads calls round-robin, marks an instance
// down after a (simulated) failed call, and sees an instance leave.
//   service_discovery <service name> [endpoint]
#include <iostream>
#include <string>

#include "cairn/client.h"
#include "cairn/recipes/discovery.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: service_discovery <service name> [endpoint]\n";
    return 2;
  }
  const std::string service = argv[1];
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 2 ? argv[2] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  namespace r = cairn::recipes;
  // The servers' side: each instance registers itself under a session of its own.
  auto a = r::ServiceRegistration::Start(**client, service, {"10.0.0.1:8080", "{\"zone\":\"a\"}"});
  auto b = r::ServiceRegistration::Start(**client, service, {"10.0.0.2:8080", "{\"zone\":\"b\"}"});
  if (!a.ok() || !b.ok()) {
    std::cerr << "register: " << (a.ok() ? b.status() : a.status()) << "\n";
    return 1;
  }
  // The client's side.
  auto resolver = r::ServiceResolver::Start(**client, service, r::PickPolicy::kRoundRobin);
  if (!resolver.ok()) {
    std::cerr << "resolver: " << resolver.status() << "\n";
    return 1;
  }
  cairn::CallOptions bound;
  bound.timeout = std::chrono::seconds(30);
  auto count_is = [](size_t n) { return [n](const auto& eps) { return eps.size() == n; }; };
  if (auto st = (*resolver)->WaitFor(count_is(2), bound); !st.ok()) {
    std::cerr << "waiting for 2 instances: " << st << "\n";
    return 1;
  }
  for (int i = 0; i < 4; ++i)
    std::cout << "call " << i << " -> " << (*resolver)->Pick()->address << "\n";
  // A call to 10.0.0.1 failed: skip it for a while.
  (*resolver)->MarkDown("10.0.0.1:8080", std::chrono::seconds(30));
  std::cout << "after mark-down -> " << (*resolver)->Pick()->address << "\n";
  // Instance b shuts down: it deregisters and the resolver drops it.
  (void)(*b)->Close();
  if (auto st = (*resolver)->WaitFor(count_is(1), bound); !st.ok()) {
    std::cerr << "waiting for b to leave: " << st << "\n";
    return 1;
  }
  for (const auto& ep : (*resolver)->Endpoints()) {
    std::cout << "registered: " << ep.address << " " << ep.metadata << "\n";
  }
  (void)(*a)->Close();
  return 0;
}
