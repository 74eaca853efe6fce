// cairn-sdk-floor: the C++ floor under the Python client's blocking calls. Closed-loop put or
// linearizable get from N threads for S seconds, through one of:
//
//   sdk    the C++ SDK's blocking call (Kv::Get / Kv::Put: the async call plus a wait on its
//          future, the path the Python bindings take)
//   grpc   gRPC's synchronous stub (the caller's thread waits on its own completion queue, as
//          grpcio's blocking calls in python-etcd3 do); no retry policy, no failover
//
//   cairn-sdk-floor --endpoint=127.0.0.1:2379 --path=sdk --op=get --clients=1 --seconds=3
//
// Prints one line: `path op clients ops/s p50_us p99_us start_p50_us` (sdk: the time the async
// call takes to hand back its future, a part of the latency). Keys are `floor/<client>/<n % 1000>`,
// values 256 bytes, as bench/python/bench_python.py uses.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "cairn/client.h"
#include "etcdserverpb/rpc.grpc.pb.h"

ABSL_FLAG(std::string, endpoint, "127.0.0.1:2379", "host:port of the server");
ABSL_FLAG(std::string, path, "sdk", "sdk (the C++ SDK's blocking call) or grpc (sync stub)");
ABSL_FLAG(std::string, op, "get", "get (linearizable) or put");
ABSL_FLAG(int, clients, 1, "concurrent callers (threads), sharing one client/channel");
ABSL_FLAG(double, seconds, 3, "duration");

namespace {

using Clock = std::chrono::steady_clock;

struct Worker {
  int64_t ops = 0;
  int64_t errors = 0;
  std::vector<double> latency_us;
  std::vector<double> start_us;  // sdk: the time the async call takes to return its future
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
#ifdef NDEBUG
  // As the server and the Python module do: Debian's abseil checks every Mutex for deadlock
  // cycles, gRPC's locks included.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  const std::string endpoint = absl::GetFlag(FLAGS_endpoint);
  const std::string path = absl::GetFlag(FLAGS_path);
  const bool put = absl::GetFlag(FLAGS_op) == "put";
  const int clients = absl::GetFlag(FLAGS_clients);
  if ((path != "sdk" && path != "grpc") || clients < 1) {
    std::fprintf(stderr, "bad flags\n");
    return 2;
  }
  const std::string value(256, 'x');

  std::unique_ptr<cairn::Client> client;
  std::unique_ptr<etcdserverpb::KV::Stub> stub;
  if (path == "sdk") {
    cairn::ClientOptions o;
    o.endpoints = {endpoint};
    auto c = cairn::Client::Connect(o);
    if (!c.ok()) {
      std::fprintf(stderr, "connect: %s\n", c.status().ToString().c_str());
      return 1;
    }
    client = std::move(*c);
  } else {
    stub = etcdserverpb::KV::NewStub(
        grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
  }

  auto one = [&](const std::string& key, std::vector<double>* start_us) -> bool {
    if (client) {
      // Kv::Get/Put are exactly these two steps; split, to time the start on its own.
      const auto t0 = Clock::now();
      if (put) {
        auto f = client->kv().PutAsync(key, value);
        start_us->push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        return f.Get().ok();
      }
      auto f = client->kv().GetAsync(key);
      start_us->push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      return f.Get().ok();
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (put) {
      etcdserverpb::PutRequest req;
      etcdserverpb::PutResponse resp;
      req.set_key(key);
      req.set_value(value);
      return stub->Put(&ctx, req, &resp).ok();
    }
    etcdserverpb::RangeRequest req;
    etcdserverpb::RangeResponse resp;
    req.set_key(key);
    return stub->Range(&ctx, req, &resp).ok();
  };

  // Warm up (connection, first key writes) before timing.
  std::vector<double> warm_starts;
  for (int i = 0; i < 50; ++i) one("floor/warm", &warm_starts);

  std::vector<Worker> workers(static_cast<size_t>(clients));
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  const auto stop = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(absl::GetFlag(FLAGS_seconds)));
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      Worker& w = workers[static_cast<size_t>(i)];
      for (int64_t n = 0;; ++n) {
        const auto t0 = Clock::now();
        if (t0 >= stop) break;
        bool ok = one("floor/" + std::to_string(i) + "/" + std::to_string(n % 1000), &w.start_us);
        const auto t1 = Clock::now();
        if (ok) {
          ++w.ops;
          w.latency_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        } else {
          ++w.errors;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  int64_t ops = 0, errors = 0;
  std::vector<double> all, starts;
  for (auto& w : workers) {
    ops += w.ops;
    errors += w.errors;
    all.insert(all.end(), w.latency_us.begin(), w.latency_us.end());
    starts.insert(starts.end(), w.start_us.begin(), w.start_us.end());
  }
  std::printf("%s %s %d %.0f %.0f %.0f start_p50_us=%.1f errors=%lld\n", path.c_str(),
              put ? "put" : "get", clients, static_cast<double>(ops) / elapsed, Percentile(all, 50),
              Percentile(all, 99), Percentile(starts, 50), static_cast<long long>(errors));
  return errors == 0 ? 0 : 1;
}
