#include "tests/reliability/lock_workload.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cairn/client.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/session.h"

namespace cairn::reliability {
namespace {

constexpr char kCounter[] = "lockload/counter";
constexpr char kLockName[] = "lockload/lock";
constexpr int kSessionTtlSeconds = 3;
constexpr int kStallIteration = 3;
constexpr int kStallBoundSeconds = 30;

CallOptions Timeout(int ms) {
  CallOptions call;
  call.timeout = std::chrono::milliseconds(ms);
  return call;
}

// Polls (bounded) until `key` is gone: the orphaned session's lease expired (a leader change
// in between renews leases, so no fixed sleep would do).
void WaitUntilGone(const Client& client, const std::string& key) {
  const auto bound = std::chrono::steady_clock::now() + std::chrono::seconds(kStallBoundSeconds);
  while (std::chrono::steady_clock::now() < bound) {
    auto got = client.kv().Get(key, {}, Timeout(1000));
    if (got.ok() && got->kvs.empty()) return;
    SleepMs(100);
  }
}

struct Counts {
  std::atomic<int64_t> acknowledged{0};
  std::atomic<int64_t> unknown{0};
  std::atomic<int64_t> fenced{0};
};

// One contender until `stop`: lock, read, guarded increment, unlock; a lost session is replaced.
// Contender 0 stalls once while holding the lock (Kleppmann's paused client): it stops its
// session's keepalive and waits until the server expired the lease and deleted its lock key (the
// lock may go to another contender); its late write must then be refused by the guard.
void Contender(int id, const std::vector<std::string>& endpoints, const std::atomic<bool>& stop,
               Counts& counts) {
  ClientOptions client_options;
  client_options.endpoints = endpoints;
  client_options.dial_timeout = std::chrono::milliseconds(2000);
  client_options.default_timeout = std::chrono::milliseconds(2000);
  auto client = Client::Connect(client_options);
  if (!client.ok()) return;
  std::shared_ptr<recipes::Session> session;
  bool stalled = false;
  for (int iteration = 0; !stop.load(); ++iteration) {
    if (session == nullptr || !session->alive()) {
      recipes::SessionOptions session_options;
      session_options.ttl_seconds = kSessionTtlSeconds;
      auto created = recipes::Session::Create(**client, session_options, Timeout(2000));
      if (!created.ok()) continue;
      session = *created;
    }
    bool stall_now = false;
    recipes::Mutex mutex(session, kLockName);
    auto grant = mutex.Lock(Timeout(3000));
    if (!grant.ok()) continue;  // timed out behind a paused holder, or the session was lost
    auto current = (*client)->kv().Get(kCounter, {}, Timeout(2000));
    if (current.ok()) {
      int64_t value = 0;
      if (!current->kvs.empty() && !absl::SimpleAtoi(current->kvs[0].value, &value))
        value = -1000000;
      if (id == 0 && !stalled && iteration >= kStallIteration) {
        stalled = true;
        stall_now = true;
        session->Orphan();
        WaitUntilGone(**client, grant->key);
      }
      auto txn = (*client)->kv().Commit(
          Txn().If({grant->Guard()}).Then({Op::Put(kCounter, absl::StrCat(value + 1))}),
          Timeout(2000));
      if (!txn.ok()) {
        counts.unknown.fetch_add(1);
      } else if (txn->succeeded) {
        counts.acknowledged.fetch_add(1);
      } else {
        counts.fenced.fetch_add(1);
      }
    }
    (void)mutex.Unlock(Timeout(2000));
    if (stall_now) session = nullptr;  // its lease is gone
  }
  if (session != nullptr) (void)session->Close(Timeout(1000));
}

}  // namespace

std::string LockResult::Summary() const {
  return absl::StrCat(error.empty() ? "" : absl::StrCat("harness error: ", error, "; "),
                      "acknowledged ", acknowledged, ", unknown ", unknown, ", fenced ", fenced,
                      ", final counter ", final_counter, ", faults ", faults_injected);
}

LockResult RunLockWorkload(const RunOptions& options) {
  LockResult result;
  auto cluster = StartCluster(options);
  if (!cluster.ok()) {
    result.error = cluster.status().ToString();
    return result;
  }
  std::vector<std::string> endpoints = (*cluster)->ClientEndpoints();
  std::atomic<bool> stop{false};
  Counts counts;
  std::vector<std::thread> contenders;
  for (int c = 0; c < options.clients; ++c) {
    contenders.emplace_back(
        [c, &endpoints, &stop, &counts] { Contender(c, endpoints, stop, counts); });
  }
  InjectFaults(options, **cluster,
               std::chrono::steady_clock::now() + std::chrono::milliseconds(options.duration_ms),
               result.faults_injected, result.error);
  stop = true;
  for (auto& t : contenders) t.join();
  result.acknowledged = counts.acknowledged.load();
  result.unknown = counts.unknown.load();
  result.fenced = counts.fenced.load();
  ClientOptions client_options;
  client_options.endpoints = endpoints;
  auto client = Client::Connect(client_options);
  if (!client.ok()) {
    result.error = absl::StrCat("final read: ", client.status().ToString());
    return result;
  }
  auto final_value = (*client)->kv().Get(kCounter, {}, Timeout(10000));
  if (!final_value.ok()) {
    result.error = absl::StrCat("final read: ", final_value.status().ToString());
    return result;
  }
  result.final_counter = 0;
  if (!final_value->kvs.empty() &&
      !absl::SimpleAtoi(final_value->kvs[0].value, &result.final_counter)) {
    result.error = "counter is not a number";
  }
  return result;
}

}  // namespace cairn::reliability
