// Shared pieces of the multi-member cluster tests: cluster startup with fast election timing,
// etcdctl invocation, and a concurrent write load that records every acknowledged put.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/harness/cluster_ops.h"
#include "tests/harness/server_process.h"

namespace cairn::testing::cluster {

// Fast Raft timing for every cluster test (both servers accept these flags).
inline constexpr int kHeartbeatMs = 50;
inline constexpr int kElectionMs = 500;
// Generous "eventually" bounds: they guard against hangs, they are not performance assertions.
inline constexpr int kLeaderBoundMs = 30000;
inline constexpr int kConvergeBoundMs = 90000;

inline std::string KindName(const ::testing::TestParamInfo<ServerKind>& info) {
  return ServerKindName(info.param);
}

inline ClusterOptions FastOptions(ServerKind kind, int members,
                                  std::vector<std::string> extra_args = {}) {
  ClusterOptions options;
  options.kind = kind;
  options.members = members;
  options.extra_args = std::move(extra_args);
  options.heartbeat_interval_ms = kHeartbeatMs;
  options.election_timeout_ms = kElectionMs;
  return options;
}

// etcdctl (API v3) against `endpoints` ("http://..., ...").
inline CommandResult Etcdctl(const std::string& endpoints, const std::vector<std::string>& args,
                             int timeout_ms = 30000) {
  std::vector<std::string> argv = {"env",         "ETCDCTL_API=3", EtcdctlPath(),
                                   "--endpoints", endpoints,       "--command-timeout=10s"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, "", timeout_ms);
}

inline std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout:\n", r.out, "\nstderr:\n", r.err);
}

// MemberAdd, retried while the server refuses with "etcdserver: unhealthy cluster" (etcd's strict
// reconfiguration check: refused until every member has been connected for 5 s, e.g. right after
// startup or a restart). Any other error ends the retries.
inline absl::StatusOr<etcdserverpb::MemberAddResponse> AddMemberWhenHealthy(
    const std::string& endpoint, const std::string& peer_url, bool learner) {
  absl::StatusOr<etcdserverpb::MemberAddResponse> added;
  PollUntil(
      [&] {
        added = AddMember(endpoint, peer_url, learner);
        return added.ok() ||
               added.status().message().find("unhealthy cluster") == std::string::npos;
      },
      std::chrono::milliseconds(kLeaderBoundMs), std::chrono::milliseconds(200));
  return added;
}

// MemberRemove, retried in the same way as AddMemberWhenHealthy.
inline absl::Status RemoveMemberWhenHealthy(const std::string& endpoint, uint64_t id,
                                            int timeout_ms = 10000) {
  absl::Status removed;
  PollUntil(
      [&] {
        removed = RemoveMember(endpoint, id, timeout_ms);
        return removed.ok() || removed.message().find("unhealthy cluster") == std::string::npos;
      },
      std::chrono::milliseconds(kLeaderBoundMs), std::chrono::milliseconds(200));
  return removed;
}

// Writer threads putting distinct keys ("<prefix><thread>/<i>") through the given endpoints (one
// channel per thread, threads spread over the endpoints), recording each acknowledged put with
// its revision. A failed put is ambiguous (it may have been applied): the thread moves on to the
// next key, so no key is ever written twice.
class WriteLoad {
 public:
  struct Ack {
    std::string value;
    int64_t revision = 0;
  };

  WriteLoad(std::vector<std::string> endpoints, int threads, std::string prefix)
      : endpoints_(std::move(endpoints)), prefix_(std::move(prefix)) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t] { Run(t); });
    }
  }
  ~WriteLoad() { Stop(); }

  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  size_t AckCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_.size();
  }
  std::map<std::string, Ack> Acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  int64_t Failures() const { return failures_.load(); }

  // Polls until at least `count` puts are acknowledged (bounded by timeout_ms).
  bool WaitForAcks(size_t count, int timeout_ms) {
    return PollUntil([&] { return AckCount() >= count; }, std::chrono::milliseconds(timeout_ms),
                     std::chrono::milliseconds(2));
  }

 private:
  void Run(int thread) {
    const std::string& endpoint = endpoints_[thread % endpoints_.size()];
    auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(endpoint));
    for (int i = 0; !stop_.load(); ++i) {
      etcdserverpb::PutRequest request;
      request.set_key(absl::StrCat(prefix_, thread, "/", i));
      request.set_value(absl::StrCat("v", thread, "-", i));
      etcdserverpb::PutResponse response;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
      grpc::Status status = stub->Put(&context, request, &response);
      if (status.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        acked_[request.key()] = Ack{request.value(), response.header().revision()};
      } else {
        ++failures_;
        // Do not spin on a dead member.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  std::vector<std::string> endpoints_;
  std::string prefix_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> failures_{0};
  std::mutex mu_;
  std::map<std::string, Ack> acked_;
  std::vector<std::thread> threads_;
};

// Serializable Range of every key under `prefix` on `endpoint` at `revision` (0 = current).
inline absl::StatusOr<std::map<std::string, mvccpb::KeyValue>> ReadPrefix(
    const std::string& endpoint, const std::string& prefix, int64_t revision = 0,
    bool serializable = true) {
  auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(endpoint));
  etcdserverpb::RangeRequest request;
  request.set_key(prefix);
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);
  request.set_range_end(end);
  request.set_serializable(serializable);
  request.set_revision(revision);
  etcdserverpb::RangeResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status status = stub->Range(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, absl::StrCat("Range on ", endpoint));
  std::map<std::string, mvccpb::KeyValue> out;
  for (const auto& kv : response.kvs()) out[kv.key()] = kv;
  return out;
}

// Every acknowledged put is present with its value and revision on every live member.
inline void ExpectAckedEverywhere(const ServerCluster& cluster, const std::string& prefix,
                                  const std::map<std::string, WriteLoad::Ack>& acked) {
  for (int m = 0; m < cluster.size(); ++m) {
    if (cluster.IsRemoved(m) || !cluster.IsRunning(m)) continue;
    auto present = ReadPrefix(cluster.ClientEndpoint(m), prefix);
    ASSERT_TRUE(present.ok()) << present.status();
    int missing = 0, wrong = 0;
    for (const auto& [key, ack] : acked) {
      auto it = present->find(key);
      if (it == present->end()) {
        if (++missing <= 5) ADD_FAILURE() << cluster.Name(m) << " lost acknowledged " << key;
        continue;
      }
      if (it->second.value() != ack.value || it->second.mod_revision() != ack.revision) {
        if (++wrong <= 5) {
          ADD_FAILURE() << cluster.Name(m) << ": " << key << " acked " << ack.value << "@"
                        << ack.revision << ", has " << it->second.ShortDebugString();
        }
      }
    }
    EXPECT_EQ(missing, 0) << cluster.Name(m) << " of " << acked.size();
    EXPECT_EQ(wrong, 0) << cluster.Name(m);
  }
}

}  // namespace cairn::testing::cluster
