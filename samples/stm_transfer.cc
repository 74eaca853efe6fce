// Sample: bank transfers with software transactional memory. Several threads move money between
// two accounts at once; each transfer reads both balances and writes both in one serializable
// transaction that is retried on conflict, so no transfer is lost and money is never created.
//   stm_transfer <account prefix> <transfers per thread> [endpoint]
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "cairn/client.h"
#include "cairn/recipes/stm.h"

namespace r = cairn::recipes;

absl::StatusOr<int64_t> Balance(r::Stm& stm, const std::string& account) {
  auto v = stm.Get(account);
  if (!v.ok()) return v.status();
  int64_t n = 0;
  if (!v->empty() && !absl::SimpleAtoi(*v, &n)) return absl::DataLossError("bad balance");
  return n;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: stm_transfer <account prefix> <transfers per thread> [endpoint]\n";
    return 2;
  }
  const std::string a = std::string(argv[1]) + "/alice", b = std::string(argv[1]) + "/bob";
  const int transfers = std::atoi(argv[2]);
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 3 ? argv[3] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  const cairn::Kv& kv = (*client)->kv();
  (void)kv.Put(a, "100");
  (void)kv.Put(b, "100");
  // Moves `amount` from `from` to `to`, refusing to overdraw.
  auto transfer = [&](const std::string& from, const std::string& to, int64_t amount) {
    return r::RunStm(kv, [&](r::Stm& stm) -> absl::Status {
      auto f = Balance(stm, from);
      auto t = Balance(stm, to);
      if (!f.ok() || !t.ok()) return f.ok() ? t.status() : f.status();
      if (*f < amount) return absl::FailedPreconditionError("insufficient funds");
      stm.Put(from, std::to_string(*f - amount));
      stm.Put(to, std::to_string(*t + amount));
      return absl::OkStatus();
    });
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < transfers; ++n) {
        auto res = i % 2 == 0 ? transfer(a, b, 1 + n % 7) : transfer(b, a, 1 + n % 5);
        if (!res.ok() && res.status().code() != absl::StatusCode::kFailedPrecondition) {
          std::cerr << "transfer: " << res.status() << "\n";
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  auto ga = kv.Get(a);
  auto gb = kv.Get(b);
  if (!ga.ok() || !gb.ok() || ga->kvs.empty() || gb->kvs.empty()) {
    std::cerr << "read balances failed\n";
    return 1;
  }
  int64_t x = std::atoll(ga->kvs[0].value.c_str()), y = std::atoll(gb->kvs[0].value.c_str());
  std::cout << "alice " << x << ", bob " << y << ", total " << x + y << "\n";
  return x + y == 200 ? 0 : 1;
}
