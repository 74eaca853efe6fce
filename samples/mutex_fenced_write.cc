// Sample: take a distributed lock and write a key only while the lock is held, using the
// grant's guard (fencing) in the transaction. Interoperates with `etcdctl lock <lock>`.
//   mutex_fenced_write <lock name> <key> <value> [endpoint]
#include <iostream>

#include "cairn/client.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: mutex_fenced_write <lock name> <key> <value> [endpoint]\n";
    return 2;
  }
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 4 ? argv[4] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  // The session's lease holds the lock; if this process dies the lock is freed after 10 s.
  cairn::recipes::SessionOptions session_options;
  session_options.ttl_seconds = 10;
  auto session = cairn::recipes::Session::Create(**client, session_options);
  if (!session.ok()) {
    std::cerr << "session: " << session.status() << "\n";
    return 1;
  }
  cairn::recipes::Mutex mutex(*session, argv[1]);
  cairn::CallOptions wait;
  wait.timeout = std::chrono::seconds(30);  // give up instead of waiting forever
  auto grant = mutex.Lock(wait);
  if (!grant.ok()) {
    std::cerr << "lock: " << grant.status() << "\n";
    return 1;
  }
  // The write applies only if the lock is still ours when the server executes it: a holder that
  // was paused past its lease (GC, swap, partition) cannot overwrite the next holder's work.
  cairn::Txn txn;
  txn.If({grant->Guard()}).Then({cairn::Op::Put(argv[2], argv[3])});
  auto result = (*client)->kv().Commit(txn);
  if (!result.ok()) {
    std::cerr << "txn: " << result.status() << "\n";
    return 1;
  }
  if (!result->succeeded) {
    std::cerr << "lock lost before the write; nothing written\n";
    return 1;
  }
  std::cout << "wrote " << argv[2] << " under lock " << grant->key << " fencing token "
            << grant->fencing_token << "\n";
  if (auto st = mutex.Unlock(); !st.ok()) {
    std::cerr << "unlock: " << st << "\n";
    return 1;
  }
  return 0;
}
