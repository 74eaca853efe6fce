// Sample: put, get and a compare-and-swap transaction.
//   put_get_txn [endpoint ...]      (default 127.0.0.1:2379)
#include <iostream>

#include "cairn/client.h"

int main(int argc, char** argv) {
  cairn::ClientOptions options;
  for (int i = 1; i < argc; ++i) options.endpoints.push_back(argv[i]);
  if (options.endpoints.empty()) options.endpoints.push_back("127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  cairn::Kv kv = (*client)->kv();

  auto put = kv.Put("sample/greeting", "hello");
  if (!put.ok()) {
    std::cerr << "put: " << put.status() << "\n";
    return 1;
  }
  std::cout << "put at revision " << put->header.revision << "\n";

  cairn::GetOptions prefix;
  prefix.prefix = true;
  auto get = kv.Get("sample/", prefix);
  if (!get.ok()) {
    std::cerr << "get: " << get.status() << "\n";
    return 1;
  }
  for (const auto& item : get->kvs) std::cout << item.key << " = " << item.value << "\n";

  // Compare-and-swap: replace the value only if nobody changed it since our put.
  auto txn = kv.Commit(cairn::Txn()
                           .If({cairn::Cmp::ModRevision("sample/greeting") == put->header.revision})
                           .Then({cairn::Op::Put("sample/greeting", "hello again")})
                           .Else({cairn::Op::Get("sample/greeting")}));
  if (!txn.ok()) {
    std::cerr << "txn: " << txn.status() << "\n";
    return 1;
  }
  std::cout << "swap " << (txn->succeeded ? "succeeded" : "lost the race") << "\n";
  return 0;
}
