// Sample: a key bound to a lease that the client keeps alive; the key disappears when the
// program stops (after the TTL) or when the lease is lost.
//   lease_key <key> <value> [seconds to hold, default 10] [endpoint]
#include <iostream>

#include "cairn/client.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: lease_key <key> <value> [seconds] [endpoint]\n";
    return 2;
  }
  int hold_seconds = argc > 3 ? std::atoi(argv[3]) : 10;
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 4 ? argv[4] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  auto lease = (*client)->lease().Grant(/*ttl_seconds=*/5);
  if (!lease.ok()) {
    std::cerr << "grant: " << lease.status() << "\n";
    return 1;
  }
  cairn::KeepAliveOptions ko;
  ko.on_lost = [](const absl::Status& why) { std::cerr << "lease lost: " << why << "\n"; };
  auto keeper = (*client)->lease().KeepAlive(lease->id, ko);
  cairn::PutOptions po;
  po.lease = lease->id;
  auto put = (*client)->kv().Put(argv[1], argv[2], po);
  if (!put.ok()) {
    std::cerr << "put: " << put.status() << "\n";
    return 1;
  }
  std::cout << "holding " << argv[1] << " with lease " << std::hex << lease->id << std::dec
            << " for " << hold_seconds << " s\n";
  // WaitLost returns early if the lease is lost.
  (void)keeper->WaitLost(cairn::Clock::now() + std::chrono::seconds(hold_seconds));
  if (keeper->lost()) {
    std::cerr << "stopped early: " << keeper->status() << "\n";
    return 1;
  }
  (void)(*client)->lease().Revoke(lease->id);  // release the key now
  return 0;
}
