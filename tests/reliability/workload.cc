#include "tests/reliability/workload.h"

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "tests/reliability/grpc_ops.h"

namespace cairn::reliability {
namespace {

using history::Outcome;
using history::Recorder;
using history::Request;

constexpr char kPrefix[] = "r/";
constexpr char kPrefixEnd[] = "r0";
constexpr int kRequestTimeoutMs = 1000;
constexpr int kSettleTimeoutMs = 30000;

}  // namespace

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

namespace {

Request RandomRequest(std::mt19937_64& rng, int keys, const std::string& value) {
  const std::string key = absl::StrCat(kPrefix, "k", rng() % keys);
  switch (rng() % 10) {
    case 0:
    case 1:
      return history::RangeRequest(key);
    case 2:
      return history::RangeRequest(kPrefix, kPrefixEnd);
    case 3:
      return history::DeleteRequest(key);
    case 4:
    case 5: {
      Request r;  // CAS: if version(key) == n then put else read it
      r.is_txn = true;
      history::Compare cmp;
      cmp.target = history::Compare::Target::kVersion;
      cmp.key = key;
      cmp.number = static_cast<int64_t>(rng() % 3);
      r.compares.push_back(cmp);
      r.success = history::PutRequest(key, value).success;
      r.failure = history::RangeRequest(key).success;
      return r;
    }
    default:
      return history::PutRequest(key, value);
  }
}

class Run {
 public:
  Run(const RunOptions& options, testing::ServerCluster& cluster)
      : options_(options), cluster_(cluster) {
    for (int m = 0; m < cluster.size(); ++m) endpoints_.push_back(cluster.ClientEndpoint(m));
  }

  void Client(int id) {
    std::mt19937_64 rng(options_.seed * 7919 + static_cast<uint64_t>(id));
    size_t endpoint = static_cast<size_t>(id) % endpoints_.size();
    auto stub = etcdserverpb::KV::NewStub(testing::MakeTestChannel(endpoints_[endpoint]));
    for (int seq = 0; !stop_clients_.load(); ++seq) {
      Request request = RandomRequest(rng, options_.keys, absl::StrCat("c", id, "-", seq));
      const size_t index = recorder_.Invoke(id, request);
      history::Response response;
      grpc::Status status = Execute(*stub, request, kRequestTimeoutMs, &response);
      if (status.ok()) {
        recorder_.Complete(index, Outcome::kOk, std::move(response));
        continue;
      }
      recorder_.Complete(index, history::MayWrite(request) ? Outcome::kUnknown : Outcome::kFailed);
      endpoint = (endpoint + 1) % endpoints_.size();
      stub = etcdserverpb::KV::NewStub(testing::MakeTestChannel(endpoints_[endpoint]));
    }
  }

  void Watcher(int id) {
    const size_t w = recorder_.AddWatcher(kPrefix, kPrefixEnd);
    size_t endpoint = static_cast<size_t>(id) % endpoints_.size();
    int64_t next = 1;
    while (!stop_watchers_.load()) {
      auto stub = etcdserverpb::Watch::NewStub(testing::MakeTestChannel(endpoints_[endpoint]));
      auto ctx = std::make_shared<grpc::ClientContext>();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_watchers_.load()) break;
        watch_contexts_[id] = ctx;
      }
      recorder_.StartStream(w, next);
      auto stream = stub->Watch(ctx.get());
      etcdserverpb::WatchRequest create;
      create.mutable_create_request()->set_key(kPrefix);
      create.mutable_create_request()->set_range_end(kPrefixEnd);
      create.mutable_create_request()->set_start_revision(next);
      if (stream->Write(create)) {
        etcdserverpb::WatchResponse resp;
        while (stream->Read(&resp)) {
          history::WatchResponse recorded = ToHistory(resp);
          for (const auto& e : recorded.events) next = std::max(next, e.kv.mod_revision + 1);
          recorder_.AddWatchResponse(w, std::move(recorded));
          {
            std::lock_guard<std::mutex> lock(mu_);
            watch_next_[id] = next;
          }
          if (resp.canceled()) break;
        }
      }
      ctx->TryCancel();
      (void)stream->Finish();
      endpoint = (endpoint + 1) % endpoints_.size();
      if (!stop_watchers_.load()) SleepMs(50);  // reconnect pacing, not a wait condition
    }
  }

  // Everything healed: a final linearizable read (recorded), then the watchers catch up to it.
  bool Settle(RunResult& result) {
    int64_t final_revision = 0;
    const auto bound =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kSettleTimeoutMs);
    for (size_t attempt = 0; final_revision == 0 && std::chrono::steady_clock::now() < bound;
         ++attempt) {
      auto stub = etcdserverpb::KV::NewStub(
          testing::MakeTestChannel(endpoints_[attempt % endpoints_.size()]));
      Request request = history::RangeRequest(kPrefix, kPrefixEnd);
      const size_t index = recorder_.Invoke(-1, request);
      history::Response response;
      if (Execute(*stub, request, kRequestTimeoutMs * 3, &response).ok()) {
        final_revision = response.revision;
        recorder_.Complete(index, Outcome::kOk, std::move(response));
      } else {
        recorder_.Complete(index, Outcome::kFailed);
      }
    }
    if (final_revision == 0) {
      result.error = "no final read succeeded after healing";
      return false;
    }
    while (std::chrono::steady_clock::now() < bound) {
      // Every revision above 1 has events under the prefix, so a watcher is caught up once it got
      // the final revision's; an empty store (revision 1) has nothing to wait for.
      bool caught_up = true;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (int id = 0; id < options_.watchers; ++id)
          caught_up = caught_up && (final_revision <= 1 || watch_next_[id] > final_revision);
      }
      if (caught_up) return true;
      SleepMs(20);
    }
    result.error =
        absl::StrCat("watchers did not reach revision ", final_revision, " after healing");
    return false;
  }

  void StopWatchers() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_watchers_ = true;
    for (auto& [id, ctx] : watch_contexts_) ctx->TryCancel();
  }

  Recorder& recorder() { return recorder_; }
  std::atomic<bool> stop_clients_{false};

 private:
  const RunOptions& options_;
  testing::ServerCluster& cluster_;
  std::vector<std::string> endpoints_;
  Recorder recorder_;
  std::atomic<bool> stop_watchers_{false};
  std::mutex mu_;
  std::map<int, std::shared_ptr<grpc::ClientContext>> watch_contexts_;
  std::map<int, int64_t> watch_next_;
};

std::string KeepDir(const RunOptions& options) {
  if (!options.keep_dir.empty()) return options.keep_dir;
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/cairn-reliability-seed",
                                     options.seed, "-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

void Keep(const RunOptions& options, testing::ServerCluster* cluster,
          const history::History& history, RunResult& result) {
  result.kept_dir = KeepDir(options);
  if (result.kept_dir.empty()) return;
  std::error_code ignored;
  std::filesystem::create_directories(result.kept_dir, ignored);
  std::ofstream(result.kept_dir + "/report.txt") << result.Summary() << "\n";
  std::ofstream out(result.kept_dir + "/history.txt");
  history::WriteHistory(history, out);
  if (cluster == nullptr) return;
  for (int m = 0; m < cluster->size(); ++m) {
    std::ifstream log(cluster->LogPath(m));
    std::ofstream(absl::StrCat(result.kept_dir, "/member", m, ".log")) << log.rdbuf();
  }
}

}  // namespace

std::string RunResult::Summary() const {
  return absl::StrCat(
      error.empty() ? "" : absl::StrCat("harness error: ", error, "\n"), "operations ", operations,
      ", faults ", faults_injected, ", ", report.Summary(),
      kept_dir.empty() ? "" : absl::StrCat("\nhistory and logs kept in ", kept_dir));
}

absl::StatusOr<std::unique_ptr<testing::ServerCluster>> StartCluster(const RunOptions& options) {
  testing::ClusterOptions cluster_options{.kind = options.kind, .members = options.members};
  cluster_options.heartbeat_interval_ms = 50;
  cluster_options.election_timeout_ms = 500;
  if (options.snapshot_count > 0) {
    cluster_options.extra_args = {absl::StrCat("--snapshot-count=", options.snapshot_count)};
  }
  return testing::ServerCluster::Start(cluster_options);
}

std::vector<Fault> ParseFaults(const std::string& list, std::string* error) {
  std::vector<Fault> faults;
  for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    if (name == "kill") {
      faults.push_back(Fault::kKill);
    } else if (name == "pause") {
      faults.push_back(Fault::kPause);
    } else if (name == "member") {
      faults.push_back(Fault::kMember);
    } else if (name == "disk") {
      faults.push_back(Fault::kDisk);
    } else if (name == "partition") {
      faults.push_back(Fault::kPartition);
    } else {
      *error = absl::StrCat("unknown fault '", name,
                            "' (supported: kill, pause, member, disk, partition)");
    }
  }
  return faults;
}

RunResult RunRegisterWorkload(const RunOptions& options) {
  RunResult result;
  auto cluster = StartCluster(options);
  if (!cluster.ok()) {
    result.error = cluster.status().ToString();
    return result;
  }
  Run run(options, **cluster);
  std::vector<std::thread> clients;
  std::vector<std::thread> watchers;
  for (int w = 0; w < options.watchers; ++w) watchers.emplace_back([&run, w] { run.Watcher(w); });
  for (int c = 0; c < options.clients; ++c) clients.emplace_back([&run, c] { run.Client(c); });
  InjectFaults(options, **cluster,
               std::chrono::steady_clock::now() + std::chrono::milliseconds(options.duration_ms),
               result.faults_injected, result.error);
  run.stop_clients_ = true;
  for (auto& t : clients) t.join();
  if (result.error.empty()) run.Settle(result);
  run.StopWatchers();
  for (auto& t : watchers) t.join();
  history::History history = run.recorder().Snapshot();
  result.operations = static_cast<int64_t>(history.operations.size());
  result.report = history::Check(history);
  if (!result.ok()) Keep(options, cluster->get(), history, result);
  return result;
}

}  // namespace cairn::reliability
