// Sample: leader election. Campaigns, leads for a while (or until the session is lost), then
// resigns. Agrees with `etcdctl elect <election>`.
//   election <election name> <proposal> [seconds to lead, default 5] [endpoint]
#include <cstdlib>
#include <iostream>

#include "cairn/client.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/session.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: election <election name> <proposal> [seconds] [endpoint]\n";
    return 2;
  }
  int seconds = argc > 3 ? std::atoi(argv[3]) : 5;
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 4 ? argv[4] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  cairn::recipes::SessionOptions session_options;
  session_options.ttl_seconds = 10;
  auto session = cairn::recipes::Session::Create(**client, session_options);
  if (!session.ok()) {
    std::cerr << "session: " << session.status() << "\n";
    return 1;
  }
  cairn::recipes::Election election(*session, argv[1]);
  auto grant = election.Campaign(argv[2]);  // waits until elected
  if (!grant.ok()) {
    std::cerr << "campaign: " << grant.status() << "\n";
    return 1;
  }
  std::cout << "leader: " << argv[2] << " (key " << grant->key << ", fencing token "
            << grant->fencing_token << ")\n";
  // Lead until the time is up; a lost session ends the leadership early.
  cairn::CallOptions lead;
  lead.timeout = std::chrono::seconds(seconds);
  absl::Status ended = (*session)->Wait(lead);
  if (!(*session)->alive()) {
    std::cerr << "leadership lost: " << ended << "\n";
    return 1;
  }
  if (auto st = election.Resign(); !st.ok()) {
    std::cerr << "resign: " << st << "\n";
    return 1;
  }
  std::cout << "resigned\n";
  return 0;
}
