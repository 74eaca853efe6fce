// Sample: barriers. A Barrier holds back workers until a coordinator lowers it; a DoubleBarrier
// lets N workers start a phase together (Enter) and finish it together (Leave).
//   barrier <name> <workers> [endpoint]
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cairn/client.h"
#include "cairn/recipes/barrier.h"
#include "cairn/recipes/session.h"

namespace r = cairn::recipes;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: barrier <name> <workers> [endpoint]\n";
    return 2;
  }
  const std::string name = argv[1];
  const int workers = std::atoi(argv[2]);
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 3 ? argv[3] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  cairn::CallOptions bound;  // no wait in this sample may take longer
  bound.timeout = std::chrono::seconds(30);
  std::mutex out_mu;
  auto say = [&](const std::string& s) {
    std::lock_guard<std::mutex> lock(out_mu);
    std::cout << s << std::endl;
  };

  // 1. The coordinator raises the gate; workers wait on it; lowering it releases them all.
  r::Barrier gate(**client, name + "/gate");
  if (auto st = gate.Hold(bound); !st.ok()) {
    std::cerr << "hold: " << st << "\n";
    return 1;
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] {
      if (gate.Wait(bound).ok()) say("worker " + std::to_string(i) + " passed the gate");
    });
  }
  say("gate lowered");
  (void)gate.Release(bound);
  for (auto& t : threads) t.join();
  threads.clear();

  // 2. A double barrier: nobody computes before all entered, nobody leaves before all left.
  int failures = 0;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] {
      auto session = r::Session::Create(**client);
      if (!session.ok()) return;
      r::DoubleBarrier phase(*session, name + "/phase", workers);
      absl::Status st = phase.Enter(bound);
      if (st.ok()) say("worker " + std::to_string(i) + " entered; all " + argv[2] + " are in");
      if (st.ok()) st = phase.Leave(bound);
      if (!st.ok()) {
        say("worker " + std::to_string(i) + ": " + st.ToString());
        std::lock_guard<std::mutex> lock(out_mu);
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failures > 0) return 1;
  std::cout << "all " << workers << " left the phase\n";
  return 0;
}
