// Sample: a microservice whose periodic job must run on exactly one instance at a time. Every
// instance runs a LeaderSelector; the elected one runs the job (each write guarded by its
// fencing token, so a deposed leader's late write is refused), gives up the leadership and
// campaigns again, so leadership rotates among live instances. Start several with the same
// election name to watch them take turns.
//   leader_selector <election name> <instance name> <jobs to run> [endpoint]
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <string>

#include "cairn/client.h"
#include "cairn/recipes/leader_selector.h"
#include "cairn/recipes/session.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: leader_selector <election name> <instance name> <jobs> [endpoint]\n";
    return 2;
  }
  const std::string election = argv[1], instance = argv[2];
  const int jobs = std::atoi(argv[3]);
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 4 ? argv[4] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  auto session = cairn::recipes::Session::Create(**client);
  if (!session.ok()) {
    std::cerr << "session: " << session.status() << "\n";
    return 1;
  }
  const cairn::Kv& kv = (*client)->kv();
  std::atomic<int> done{0};
  cairn::Promise<bool> finished;
  cairn::recipes::LeaderSelectorOptions so;
  so.value = instance;
  so.take_leadership = [&](const cairn::recipes::Grant& grant, const cairn::CancelToken& lost) {
    if (lost.canceled()) return;  // leadership already in danger: do nothing
    // The leader-only job: record who ran it, only while still leader.
    cairn::Txn txn;
    txn.If({grant.Guard()})
        .Then({cairn::Op::Put(election + "-last-job", instance + " job " + std::to_string(done))});
    auto r = kv.Commit(txn);
    if (r.ok() && r->succeeded) {
      std::cout << instance << " ran job " << done << " as leader (fencing token "
                << grant.fencing_token << ")" << std::endl;
      if (++done == jobs) finished.Set(true);
    }
  };  // returning gives up the leadership; the selector campaigns again (requeue)
  auto selector = cairn::recipes::LeaderSelector::Start(*session, election, so);
  if (!selector.ok()) {
    std::cerr << "selector: " << selector.status() << "\n";
    return 1;
  }
  cairn::CallOptions bound;
  bound.timeout = std::chrono::seconds(60);
  auto f = finished.future();
  if (!f.WaitUntil(cairn::Clock::now() + bound.timeout)) {
    std::cerr << "jobs not done: " << (*selector)->status() << "\n";
    return 1;
  }
  (*selector)->Close();
  std::cout << instance << " stopped after " << (*selector)->leaderships() << " leaderships\n";
  return 0;
}
