// Helpers shared by the client tests: servers per ServerKind, clients, bounded waits, a
// thread-safe collector of watch responses.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/client.h"
#include "tests/harness/server_process.h"

namespace cairn::client_test {

using cairn::testing::ClusterOptions;
using cairn::testing::ServerCluster;
using cairn::testing::ServerKind;

// CAIRN_CLIENT_TESTS_CAIRN=all adds cairn to every suite (to try suites cairn is growing into).
inline bool CairnForAllSuites() {
  const char* v = std::getenv("CAIRN_CLIENT_TESTS_CAIRN");
  return v != nullptr && std::string(v) == "all";
}

// Kinds for suites that need Watch/Lease/Auth/...: etcd until cairn serves them.
inline std::vector<ServerKind> EtcdOnlyKinds() {
  if (CairnForAllSuites()) return cairn::testing::TestedServerKinds();
  std::vector<ServerKind> out;
  if (cairn::testing::ServerAvailable(ServerKind::kEtcd)) out.push_back(ServerKind::kEtcd);
  return out;
}
inline std::vector<ServerKind> EtcdOnly() { return EtcdOnlyKinds(); }

// Kinds for single-member suites whose calls cairn serves (KV, Txn, Compact, Status,
// MemberList, Watch, Lease): etcd and cairn (the harness requires cairn whenever the build has
// it). Multi-member, Auth and Maintenance suites stay etcd-only until cairn serves them.
inline std::vector<ServerKind> CairnServedKinds() { return cairn::testing::TestedServerKinds(); }

inline std::string KindName(const ::testing::TestParamInfo<ServerKind>& info) {
  return cairn::testing::ServerKindName(info.param);
}

inline ClientOptions OptionsFor(const ServerCluster& cluster) {
  ClientOptions o;
  o.endpoints = cluster.ClientEndpoints();
  o.dial_timeout = std::chrono::milliseconds(10000);
  o.default_timeout = std::chrono::milliseconds(15000);
  return o;
}

// Polls `pred` every 10 ms until it holds or `timeout` passes; returns its last value.
inline bool PollUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(20000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

inline Clock::time_point In(std::chrono::milliseconds d) { return Clock::now() + d; }

// Collects everything a watch delivers.
class WatchLog {
 public:
  WatchCallback Callback() {
    return [this](const WatchResponse& r) {
      std::lock_guard<std::mutex> lock(mu_);
      responses_.push_back(r);
      for (const auto& e : r.events) events_.push_back(e);
      cv_.notify_all();
    };
  }
  // Waits (bounded) until at least n events arrived.
  bool WaitEvents(size_t n, std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return events_.size() >= n; });
  }
  bool WaitFor(const std::function<bool(const WatchResponse&)>& pred,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      for (const auto& r : responses_) {
        if (pred(r)) return true;
      }
      return false;
    });
  }
  std::vector<Event> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::vector<WatchResponse> responses() {
    std::lock_guard<std::mutex> lock(mu_);
    return responses_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchResponse> responses_;
  std::vector<Event> events_;
};

// A fixture starting a fresh cluster of the parameter's kind for every test.
class ClusterTest : public ::testing::TestWithParam<ServerKind> {
 protected:
  void StartCluster(int members = 1, std::vector<std::string> extra_args = {}) {
    ClusterOptions o;
    o.kind = GetParam();
    o.members = members;
    o.extra_args = std::move(extra_args);
    auto c = ServerCluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    started_ = true;
  }
  std::unique_ptr<Client> Connect(ClientOptions o) {
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::unique_ptr<Client> Connect() { return Connect(OptionsFor(*cluster_)); }

  std::unique_ptr<ServerCluster> cluster_;
  bool started_ = false;
};

}  // namespace cairn::client_test
