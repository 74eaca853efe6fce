// Sample: a shared counter incremented concurrently by many workers without losing updates
// (optimistic compare-and-swap on the key's mod revision, retried on conflict).
//   counter <key> <workers> <increments per worker> [endpoint]
#include <cstdlib>
#include <iostream>
#include <thread>
#include <vector>

#include "cairn/client.h"
#include "cairn/recipes/counter.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: counter <key> <workers> <increments per worker> [endpoint]\n";
    return 2;
  }
  const int workers = std::atoi(argv[2]), increments = std::atoi(argv[3]);
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 4 ? argv[4] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  cairn::recipes::Counter counter(**client, argv[1]);
  if (auto st = counter.Set(0); !st.ok()) {
    std::cerr << "set: " << st << "\n";
    return 1;
  }
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < increments; ++i) {
        if (auto v = counter.Add(1); !v.ok()) std::cerr << "add: " << v.status() << "\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  auto v = counter.Get();
  if (!v.ok()) {
    std::cerr << "get: " << v.status() << "\n";
    return 1;
  }
  std::cout << "counter = " << *v << " (expected " << workers * increments << ")\n";
  // Compare-and-set: only one of two racing resets from the same value can win.
  auto first = counter.CompareAndSet(*v, -1), second = counter.CompareAndSet(*v, -2);
  std::cout << "cas from " << *v << ": " << (first.value_or(false) ? "won" : "lost") << ", then "
            << (second.value_or(false) ? "won" : "lost") << "\n";
  return *v == workers * increments && first.value_or(false) && !second.value_or(true) ? 0 : 1;
}
