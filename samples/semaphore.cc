// Sample: a distributed semaphore bounding how many workers use a resource at once. Each worker
// (its own session, as separate processes would have) takes one of N permits, works, and
// releases it; the sample checks that never more than N held a permit at the same time.
//   semaphore <name> <permits> <workers> [endpoint]
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cairn/client.h"
#include "cairn/recipes/semaphore.h"
#include "cairn/recipes/session.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: semaphore <name> <permits> <workers> [endpoint]\n";
    return 2;
  }
  const int permits = std::atoi(argv[2]), workers = std::atoi(argv[3]);
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 4 ? argv[4] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  std::atomic<int> holders{0}, most{0}, done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&] {
      auto session = cairn::recipes::Session::Create(**client);
      if (!session.ok()) return;
      cairn::recipes::Semaphore sem(*session, argv[1], permits);
      cairn::CallOptions bound;
      bound.timeout = std::chrono::seconds(30);
      auto permit = sem.Acquire(bound);
      if (!permit.ok()) {
        std::cerr << "acquire: " << permit.status() << "\n";
        return;
      }
      int now = ++holders;
      for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
      }
      // Use the resource; permit->Guard() fences writes made under the permit.
      (void)(*client)->kv().Put(
          std::string(argv[1]) + "-work/" + permit->key.substr(permit->key.rfind('/') + 1), "done");
      --holders;
      if (sem.Release().ok()) ++done;
    });
  }
  for (auto& t : threads) t.join();
  std::cout << done << " of " << workers << " workers done; at most " << most
            << " held a permit at once (permits " << permits << ")\n";
  return done == workers && most <= permits ? 0 : 1;
}
