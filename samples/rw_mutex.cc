// Sample: a readers-writer lock. Readers share the lock; a writer excludes readers and other
// writers and, once it waits, is not overtaken by readers arriving after it.
//   rw_mutex <name> [endpoint]
#include <iostream>
#include <string>

#include "cairn/client.h"
#include "cairn/recipes/rw_mutex.h"
#include "cairn/recipes/session.h"

namespace r = cairn::recipes;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: rw_mutex <name> [endpoint]\n";
    return 2;
  }
  const std::string name = argv[1];
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 2 ? argv[2] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  // Three participants, each with its own session (as three processes would have).
  auto s1 = r::Session::Create(**client), s2 = r::Session::Create(**client),
       s3 = r::Session::Create(**client);
  if (!s1.ok() || !s2.ok() || !s3.ok()) {
    std::cerr << "session failed\n";
    return 1;
  }
  r::RWMutex reader1(*s1, name), reader2(*s2, name), writer(*s3, name);
  cairn::CallOptions bound;
  bound.timeout = std::chrono::seconds(30);
  if (!reader1.RLock(bound).ok() || !reader2.RLock(bound).ok()) {
    std::cerr << "read locks failed\n";
    return 1;
  }
  std::cout << "two readers hold the lock together\n";
  auto w = writer.TryLock();
  if (!w.ok() || w->has_value()) return 1;
  std::cout << "the writer cannot take it while they read\n";
  (void)reader1.Unlock();
  (void)reader2.Unlock();
  auto g = writer.Lock(bound);
  if (!g.ok()) {
    std::cerr << "write lock: " << g.status() << "\n";
    return 1;
  }
  // A write fenced by the write lock.
  cairn::Txn txn;
  txn.If({g->Guard()}).Then({cairn::Op::Put(name + "-data", "written under the write lock")});
  auto res = (*client)->kv().Commit(txn);
  std::cout << "writer has it: fenced write "
            << (res.ok() && res->succeeded ? "applied" : "refused") << "\n";
  (void)writer.Unlock();
  return res.ok() && res->succeeded ? 0 : 1;
}
