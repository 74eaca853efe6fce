// cairn-recipe-bench: the client-side recipes (cairn::recipes) under load, against any etcd v3
// endpoint, so cairn and etcd are measured with the same recipe code.
//
//   cairn-recipe-bench --endpoints=h:p[,h:p] [flags] mutex | election | ping
//
//   mutex     --contenders=N --duration=S: N threads, each with its own session, loop
//             Lock + Unlock on one Mutex name. Reports acquire+release pairs per second and the
//             hand-off latency: from the moment a holder calls Unlock to the moment the next
//             holder's Lock returns (every acquisition that follows a release; the holder stores
//             the time of its Unlock call before making it, the next holder reads it).
//   election  --rounds=R --kill=close|orphan --ttl=S: two candidates, each campaigning under a
//             session of its own. Each round the leader's session ends (close: revoked, as a
//             clean shutdown; orphan: keepalives stop and the lease expires after its TTL, as a
//             crashed process) and the time until the other candidate's Campaign returns is the
//             failover time. The old leader then campaigns again under a new session; the next
//             round starts once both candidates' keys exist (seen through a PrefixCache).
//   ping      one linearizable Get (exit 0 when the server answers): readiness probe.
//
// Output: a human-readable line and, with --json=FILE ('-' = stdout), one JSON object
// {"workload":..,"params":{..},"ok":n,"errors":n,"elapsed_s":..,"throughput":..,
//  "latency_ms":{"p50","p90","p99","max","n"}} where latency is the hand-off (mutex) or the
// failover time (election). Exit code 0, or 1 with a message when the run failed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cairn/client.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/prefix_cache.h"
#include "cairn/recipes/session.h"

namespace {

namespace r = cairn::recipes;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  int contenders = 10;
  double duration_s = 5;
  int rounds = 20;
  std::string kill = "close";
  int64_t ttl_s = 10;
  std::string name = "recipe-bench";
  std::string json;
  std::string workload;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Result {
  int64_t ok = 0;
  int64_t errors = 0;
  double elapsed_s = 0;
  std::vector<double> latency_ms;
  std::string first_error;
};

// Nearest-rank percentile of sorted `v` (0 when empty).
double Percentile(const std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

void Report(const Flags& f, Result res) {
  std::sort(res.latency_ms.begin(), res.latency_ms.end());
  const double throughput = res.elapsed_s > 0 ? static_cast<double>(res.ok) / res.elapsed_s : 0;
  const std::vector<double>& l = res.latency_ms;
  std::string params =
      f.workload == "mutex"
          ? absl::StrFormat("{\"contenders\":%d,\"duration_s\":%g}", f.contenders, f.duration_s)
          : absl::StrFormat("{\"rounds\":%d,\"kill\":\"%s\",\"ttl_s\":%d}", f.rounds, f.kill,
                            f.ttl_s);
  std::string json = absl::StrFormat(
      "{\"workload\":\"%s\",\"params\":%s,\"ok\":%d,\"errors\":%d,\"elapsed_s\":%.3f,"
      "\"throughput\":%.1f,\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
      "\"max\":%.3f,\"n\":%d}}",
      f.workload, params, res.ok, res.errors, res.elapsed_s, throughput, Percentile(l, 50),
      Percentile(l, 90), Percentile(l, 99), l.empty() ? 0.0 : l.back(), l.size());
  std::cout << absl::StrFormat(
                   "%s: ok %d errors %d in %.2f s: %.1f ops/s; %s ms p50 %.2f p90 %.2f p99 %.2f "
                   "max %.2f (n=%d)",
                   f.workload, res.ok, res.errors, res.elapsed_s, throughput,
                   f.workload == "mutex" ? "hand-off" : "failover", Percentile(l, 50),
                   Percentile(l, 90), Percentile(l, 99), l.empty() ? 0.0 : l.back(), l.size())
            << std::endl;
  if (!res.first_error.empty()) std::cerr << "first error: " << res.first_error << "\n";
  if (f.json == "-") {
    std::cout << json << std::endl;
  } else if (!f.json.empty()) {
    std::ofstream(f.json) << json << "\n";
  }
}

// ---- mutex ---------------------------------------------------------------------------------

Result RunMutex(const cairn::Client& client, const Flags& f) {
  Result res;
  std::mutex mu;                             // guards res
  std::atomic<int64_t> unlock_called_ns{0};  // written by the holder just before its Unlock
  cairn::CancelToken stop = cairn::CancelToken::Make();
  std::vector<std::shared_ptr<r::Session>> sessions(static_cast<size_t>(f.contenders));
  for (auto& s : sessions) {
    r::SessionOptions so;
    so.ttl_seconds = f.ttl_s;
    auto created = r::Session::Create(client, so);
    if (!created.ok()) {
      res.errors = 1;
      res.first_error = "session: " + created.status().ToString();
      return res;
    }
    s = *created;
  }
  const std::string name = f.name + "/mutex";
  Clock::time_point start = Clock::now();
  Clock::time_point end =
      start + std::chrono::microseconds(static_cast<int64_t>(f.duration_s * 1e6));
  std::vector<std::thread> threads;
  for (int i = 0; i < f.contenders; ++i) {
    threads.emplace_back([&, i] {
      r::Mutex m(sessions[static_cast<size_t>(i)], name);
      int64_t ok = 0, errors = 0;
      std::vector<double> handoff;
      std::string err;
      cairn::CallOptions wait;
      wait.cancel = stop;
      while (Clock::now() < end) {
        auto g = m.Lock(wait);
        if (!g.ok()) {
          if (stop.canceled()) break;
          ++errors;
          if (err.empty()) err = g.status().ToString();
          continue;
        }
        int64_t acquired = NowNs();
        int64_t released = unlock_called_ns.exchange(0);
        if (released != 0) handoff.push_back(static_cast<double>(acquired - released) / 1e6);
        unlock_called_ns.store(NowNs());
        absl::Status st = m.Unlock();
        if (!st.ok()) {
          ++errors;
          if (err.empty()) err = st.ToString();
          continue;
        }
        if (Clock::now() <= end) ++ok;
      }
      std::lock_guard<std::mutex> lock(mu);
      res.ok += ok;
      res.errors += errors;
      res.latency_ms.insert(res.latency_ms.end(), handoff.begin(), handoff.end());
      if (res.first_error.empty()) res.first_error = err;
    });
  }
  // The waiters still queued at the end are released by canceling their Lock calls.
  std::this_thread::sleep_until(end);  // the measurement interval itself, not a wait condition
  stop.Cancel();
  for (auto& t : threads) t.join();
  res.elapsed_s = std::chrono::duration<double>(end - start).count();
  for (auto& s : sessions) (void)s->Close();
  return res;
}

// ---- election ------------------------------------------------------------------------------

Result RunElection(const cairn::Client& client, const Flags& f) {
  Result res;
  const std::string name = f.name + "/election";
  std::mutex mu;  // declared before the cache: its listener uses them until it is destroyed
  std::condition_variable cv;
  auto cache = r::PrefixCache::Start(client, name + "/");
  if (!cache.ok()) {
    res.errors = 1;
    res.first_error = "cache: " + cache.status().ToString();
    return res;
  }
  int64_t kill_ns = 0;                 // when the current leader's session was ended
  std::shared_ptr<r::Session> leader;  // the current leader's session (null: none yet)
  bool stopping = false;
  (*cache)->AddListener([&](const std::vector<cairn::Event>&, cairn::Revision, bool) {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  });
  cairn::CancelToken stop = cairn::CancelToken::Make();
  auto candidate = [&](int id) {
    while (true) {
      r::SessionOptions so;
      so.ttl_seconds = f.ttl_s;
      auto s = r::Session::Create(client, so);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        ++res.errors;
        if (res.first_error.empty()) res.first_error = "session: " + s.status().ToString();
        if (stopping || res.errors > 100) return;
        continue;
      }
      r::Election e(*s, name);
      cairn::CallOptions wait;
      wait.cancel = stop;
      auto g = e.Campaign("candidate-" + std::to_string(id), wait);
      int64_t now = NowNs();
      std::unique_lock<std::mutex> lock(mu);
      if (stopping) return;
      if (!g.ok()) {
        ++res.errors;
        if (res.first_error.empty()) res.first_error = "campaign: " + g.status().ToString();
        continue;
      }
      if (kill_ns != 0) {
        res.latency_ms.push_back(static_cast<double>(now - kill_ns) / 1e6);
        ++res.ok;
        kill_ns = 0;
      }
      leader = *s;
      cv.notify_all();
      // Lead until the driver ends this session (or the run ends).
      cv.wait(lock, [&] { return leader != *s || stopping; });
      if (stopping) return;
    }
  };
  Clock::time_point start = Clock::now();
  std::thread a(candidate, 0), b(candidate, 1);
  for (int round = 0; round < f.rounds; ++round) {
    std::shared_ptr<r::Session> victim;
    {
      std::unique_lock<std::mutex> lock(mu);
      // A leader, and the other candidate queued behind it (two keys), and the last round done.
      bool ok = cv.wait_for(lock, std::chrono::seconds(60), [&] {
        return leader != nullptr && kill_ns == 0 && (*cache)->size() == 2;
      });
      if (!ok) {
        res.first_error = "no leader with a queued candidate within 60 s";
        break;
      }
      victim = leader;
      leader = nullptr;
      kill_ns = NowNs();
      cv.notify_all();
    }
    if (f.kill == "orphan") {
      victim->Orphan();
    } else {
      (void)victim->Close();
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return kill_ns == 0; });
    res.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    stopping = true;
    leader = nullptr;
    cv.notify_all();
  }
  stop.Cancel();
  a.join();
  b.join();
  return res;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& flag, std::string* out) {
      if (a.rfind(flag + "=", 0) != 0) return false;
      *out = a.substr(flag.size() + 1);
      return true;
    };
    std::string v;
    if (value("--endpoints", &v)) {
      f->endpoints = absl::StrSplit(v, ',', absl::SkipEmpty());
    } else if (value("--contenders", &v)) {
      if (!absl::SimpleAtoi(v, &f->contenders) || f->contenders <= 0) return false;
    } else if (value("--duration", &v)) {
      if (!absl::SimpleAtod(v, &f->duration_s) || f->duration_s <= 0) return false;
    } else if (value("--rounds", &v)) {
      if (!absl::SimpleAtoi(v, &f->rounds) || f->rounds <= 0) return false;
    } else if (value("--kill", &v)) {
      if (v != "close" && v != "orphan") return false;
      f->kill = v;
    } else if (value("--ttl", &v)) {
      if (!absl::SimpleAtoi(v, &f->ttl_s) || f->ttl_s <= 0) return false;
    } else if (value("--name", &v)) {
      if (v.empty()) return false;
      f->name = v;
    } else if (value("--json", &v)) {
      f->json = v;
    } else if (a.rfind("--", 0) == 0 || !f->workload.empty()) {
      return false;
    } else {
      f->workload = a;
    }
  }
  return f->workload == "mutex" || f->workload == "election" || f->workload == "ping";
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, &f)) {
    std::cerr << "usage: cairn-recipe-bench --endpoints=h:p[,..] [--contenders=N] [--duration=S]"
                 " [--rounds=R] [--kill=close|orphan] [--ttl=S] [--name=P] [--json=FILE]"
                 " mutex|election|ping\n";
    return 2;
  }
  cairn::ClientOptions options;
  options.endpoints = f.endpoints;
  options.dial_timeout = std::chrono::seconds(5);
  options.default_timeout = std::chrono::seconds(10);
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  if (f.workload == "ping") {
    auto g = (*client)->kv().Get("recipe-bench-ping");
    if (!g.ok()) std::cerr << "ping: " << g.status() << "\n";
    return g.ok() ? 0 : 1;
  }
  Result res = f.workload == "mutex" ? RunMutex(**client, f) : RunElection(**client, f);
  Report(f, res);
  return res.ok > 0 ? 0 : 1;
}
