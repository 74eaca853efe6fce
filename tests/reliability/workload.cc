#include "tests/reliability/workload.h"

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
constexpr char kOutsidePrefix[] = "x/outside-";
constexpr int kRequestTimeoutMs = 1000;
constexpr int kSettleTimeoutMs = 30000;

// Every key: etcd reads key "\0" with range_end "\0" as [\0, +inf).
std::string AllKeys() { return std::string(1, '\0'); }

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

  // Watcher `id` < options.watchers records into the checked history and watches the workload's
  // prefix; watcher options.watchers is the keyspace observer: every key, into observer_.
  void Watcher(int id) {
    const bool observer = id == options_.watchers;
    history::Recorder& recorder = observer ? observer_ : recorder_;
    const std::string key = observer ? AllKeys() : kPrefix;
    const std::string range_end = observer ? AllKeys() : kPrefixEnd;
    const size_t w = recorder.AddWatcher(key, range_end);
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
      recorder.StartStream(w, next);
      auto stream = stub->Watch(ctx.get());
      etcdserverpb::WatchRequest create;
      create.mutable_create_request()->set_key(key);
      create.mutable_create_request()->set_range_end(range_end);
      create.mutable_create_request()->set_start_revision(next);
      if (stream->Write(create)) {
        etcdserverpb::WatchResponse resp;
        while (stream->Read(&resp)) {
          history::WatchResponse recorded = ToHistory(resp);
          for (const auto& e : recorded.events) next = std::max(next, e.kv.mod_revision + 1);
          recorder.AddWatchResponse(w, std::move(recorded));
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
        for (int id = 0; id <= options_.watchers; ++id)  // the observer too
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
  const Recorder& observer() const { return observer_; }
  std::atomic<bool> stop_clients_{false};

  // RunOptions::outside_writes: puts outside the prefix, recorded nowhere, from a channel of their
  // own (as another process would). Each is tried on every member in turn until one answers.
  void WriteOutside(int count) {
    for (int i = 0; i < count && !stop_clients_.load(); ++i) {
      etcdserverpb::PutRequest put;
      put.set_key(absl::StrCat(kOutsidePrefix, i));
      put.set_value("not-the-workload");
      for (size_t attempt = 0; attempt < 3 * endpoints_.size(); ++attempt) {
        auto stub = etcdserverpb::KV::NewStub(
            testing::MakeTestChannel(endpoints_[attempt % endpoints_.size()]));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(kRequestTimeoutMs));
        etcdserverpb::PutResponse resp;
        if (stub->Put(&ctx, put, &resp).ok()) break;
      }
    }
  }

 private:
  const RunOptions& options_;
  testing::ServerCluster& cluster_;
  std::vector<std::string> endpoints_;
  Recorder recorder_;
  Recorder observer_;  // the keyspace observer's watch responses (not checked)
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

std::string Escaped(const std::string& bytes) { return absl::CHexEscape(bytes); }

std::string EventText(const history::Event& e) {
  return e.type == history::Event::Type::kPut
             ? absl::StrCat("PUT ", Escaped(e.kv.key), "=", Escaped(e.kv.value))
             : absl::StrCat("DEL ", Escaped(e.kv.key));
}

// Every event the observer got, by revision (streams resume at last + 1; a repeat is dropped).
std::map<int64_t, std::vector<history::Event>> ObservedEvents(const history::History& observed) {
  std::map<int64_t, std::vector<history::Event>> by_revision;
  std::set<std::pair<int64_t, std::string>> seen;
  for (const history::Watcher& watcher : observed.watchers) {
    for (const history::WatchStream& stream : watcher.streams) {
      for (const history::WatchResponse& response : stream.responses) {
        for (const history::Event& e : response.events) {
          if (seen.emplace(e.kv.mod_revision, e.kv.key).second)
            by_revision[e.kv.mod_revision].push_back(e);
        }
      }
    }
  }
  return by_revision;
}

std::vector<std::string> OutsideWrites(
    const std::map<int64_t, std::vector<history::Event>>& observed) {
  std::vector<std::string> out;
  for (const auto& [revision, events] : observed) {
    for (const history::Event& e : events) {
      if (!history::InRange(e.kv.key, kPrefix, kPrefixEnd))
        out.push_back(absl::StrCat("revision ", revision, ": ", EventText(e)));
    }
  }
  return out;
}

// What a Range over every key at `revision` and at the one before differ by, asked of the first
// member that answers both; "" when none does.
std::string RangeDiff(testing::ServerCluster& cluster, int64_t revision) {
  for (int m = 0; m < cluster.size(); ++m) {
    if (cluster.IsRemoved(m) || !cluster.IsRunning(m)) continue;
    auto stub = etcdserverpb::KV::NewStub(testing::MakeTestChannel(cluster.ClientEndpoint(m)));
    history::Response at;
    history::Response before;
    if (!Execute(*stub, history::RangeRequest(AllKeys(), AllKeys(), revision), kRequestTimeoutMs,
                 &at)
             .ok() ||
        !Execute(*stub, history::RangeRequest(AllKeys(), AllKeys(), revision - 1),
                 kRequestTimeoutMs, &before)
             .ok()) {
      continue;
    }
    std::map<std::string, history::KeyValue> old_state;
    for (const history::KeyValue& kv : before.responses.at(0).kvs) old_state[kv.key] = kv;
    std::vector<std::string> changes;
    for (const history::KeyValue& kv : at.responses.at(0).kvs) {
      if (kv.mod_revision == revision)
        changes.push_back(absl::StrCat("PUT ", Escaped(kv.key), "=", Escaped(kv.value)));
      old_state.erase(kv.key);
    }
    for (const auto& [key, kv] : old_state) changes.push_back(absl::StrCat("DEL ", Escaped(key)));
    return absl::StrCat("a Range over every key on member ", m, " at revision ", revision, " and ",
                        revision - 1, " differs by [", absl::StrJoin(changes, ", "), "]");
  }
  return "";
}

// For each "no-writer: revision N" anomaly: what revision N really contained.
std::vector<std::string> Diagnose(const history::Report& report,
                                  const std::map<int64_t, std::vector<history::Event>>& observed,
                                  testing::ServerCluster& cluster) {
  constexpr absl::string_view kNoWriter = "no-writer: revision ";
  std::vector<std::string> out;
  for (const std::string& anomaly : report.anomalies) {
    int64_t revision = 0;
    if (!absl::StartsWith(anomaly, kNoWriter) ||
        !absl::SimpleAtoi(absl::string_view(anomaly)
                              .substr(kNoWriter.size())
                              .substr(0, anomaly.find(' ', kNoWriter.size()) - kNoWriter.size()),
                          &revision) ||
        revision < 2) {
      continue;
    }
    std::vector<std::string> events;
    if (auto it = observed.find(revision); it != observed.end()) {
      for (const history::Event& e : it->second) events.push_back(EventText(e));
    }
    out.push_back(absl::StrCat("revision ", revision, ": the keyspace observer got [",
                               absl::StrJoin(events, ", "), "]"));
    if (std::string diff = RangeDiff(cluster, revision); !diff.empty())
      out.push_back(absl::StrCat("revision ", revision, ": ", diff));
  }
  return out;
}

void Keep(const RunOptions& options, testing::ServerCluster* cluster,
          const history::History& history, const history::History& observed, RunResult& result) {
  result.kept_dir = KeepDir(options);
  if (result.kept_dir.empty()) return;
  std::error_code ignored;
  std::filesystem::create_directories(result.kept_dir, ignored);
  std::ofstream(result.kept_dir + "/report.txt") << result.Summary() << "\n";
  std::ofstream out(result.kept_dir + "/history.txt");
  history::WriteHistory(history, out);
  std::ofstream keyspace(result.kept_dir + "/keyspace.txt");
  history::WriteHistory(observed, keyspace);
  if (cluster == nullptr) return;
  for (int m = 0; m < cluster->size(); ++m) {
    std::ifstream log(cluster->LogPath(m));
    std::ofstream(absl::StrCat(result.kept_dir, "/member", m, ".log")) << log.rdbuf();
  }
}

}  // namespace

std::string RunResult::Summary() const {
  std::string out =
      absl::StrCat(error.empty() ? "" : absl::StrCat("harness error: ", error, "\n"), "operations ",
                   operations, ", faults ", faults_injected, ", ", report.Summary());
  if (!outside_writes.empty()) {
    absl::StrAppend(&out,
                    "\nwrites outside the workload's prefix (not made by this run: another "
                    "process reached the cluster; the history is void):");
    for (const std::string& w : outside_writes) absl::StrAppend(&out, "\n  ", w);
  }
  for (const std::string& d : diagnosis) absl::StrAppend(&out, "\n", d);
  if (!kept_dir.empty()) absl::StrAppend(&out, "\nhistory and logs kept in ", kept_dir);
  return out;
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
  // Watchers 0..watchers-1 on the prefix, then the keyspace observer.
  for (int w = 0; w <= options.watchers; ++w) watchers.emplace_back([&run, w] { run.Watcher(w); });
  for (int c = 0; c < options.clients; ++c) clients.emplace_back([&run, c] { run.Client(c); });
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options.duration_ms);
  if (options.outside_writes > 0) {
    clients.emplace_back([&run, &options] {
      SleepMs(options.duration_ms / 2);  // pacing: halfway through the run
      run.WriteOutside(options.outside_writes);
    });
  }
  InjectFaults(options, **cluster, deadline, result.faults_injected, result.error);
  // Without faults the loop returns at once: the run still lasts its duration.
  while (options.faults.empty() && std::chrono::steady_clock::now() < deadline) SleepMs(50);
  run.stop_clients_ = true;
  for (auto& t : clients) t.join();
  if (result.error.empty()) run.Settle(result);
  run.StopWatchers();
  for (auto& t : watchers) t.join();
  history::History history = run.recorder().Snapshot();
  result.operations = static_cast<int64_t>(history.operations.size());
  result.report = history::Check(history);
  const history::History observed = run.observer().Snapshot();
  const auto observed_events = ObservedEvents(observed);
  result.outside_writes = OutsideWrites(observed_events);
  result.diagnosis = Diagnose(result.report, observed_events, **cluster);
  if (!result.ok()) Keep(options, cluster->get(), history, observed, result);
  return result;
}

}  // namespace cairn::reliability
