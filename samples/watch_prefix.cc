// Sample: watch a prefix and print events; exits after `count` events (default 5).
//   watch_prefix <prefix> [count] [endpoint]
// The watch survives server restarts and endpoint failover without gaps or duplicates.
#include <condition_variable>
#include <iostream>
#include <mutex>

#include "cairn/client.h"

int main(int argc, char** argv) {
  std::string prefix = argc > 1 ? argv[1] : "sample/";
  int count = argc > 2 ? std::atoi(argv[2]) : 5;
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 3 ? argv[3] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  std::mutex mu;
  std::condition_variable cv;
  int seen = 0;
  bool ended = false;
  cairn::WatchOptions wo;
  wo.prefix = true;
  auto watcher = (*client)->watch().Watch(prefix, wo, [&](const cairn::WatchResponse& r) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& e : r.events) {
      std::cout << (e.type == cairn::EventType::kPut ? "PUT " : "DELETE ") << e.kv.key << " "
                << e.kv.value << " @" << e.kv.mod_revision << "\n";
      ++seen;
    }
    if (r.canceled) {
      std::cout << "watch ended: " << r.status << "\n";
      ended = true;
    }
    cv.notify_all();
  });
  if (!watcher.ok()) {
    std::cerr << "watch: " << watcher.status() << "\n";
    return 1;
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return seen >= count || ended; });
  return ended ? 1 : 0;
}
