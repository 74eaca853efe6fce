// WatchHub fan-out: the cost of publishing one revision to many synced prefix watchers (the
// Kubernetes-informer shape), and the hub's memory per watcher. In-process, no gRPC: the sink
// copies each delivered event once, as the gRPC stream does into its response.
//
//   CAIRN_JOBS=1 scripts/setup.sh build cairn-watch-hub-bench
//   ./build/bench/watch/cairn-watch-hub-bench
//
// Benchmarks (argument: watchers):
//   BM_NotifyDistinctPrefixes/N     N watchers on N distinct prefixes; each revision has one
//                                   event, reaching one watcher.
//   BM_NotifyOverlappingPrefixes/N  N watchers on 4 nested prefixes (o/, o/a, o/ab, o/abc); each
//                                   revision has one event, reaching all N.
//   BM_NotifyOneWatcherBigRevisions 1 watcher on a prefix, 100 events per revision.
//   BM_MemoryPerWatcher/N           heap bytes the hub holds per registered prefix watcher
//                                   (counter bytes_per_watcher; glibc mallinfo2).
#include <malloc.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "server/base/check.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/watch_hub.h"
#include "server/storage/backend.h"

namespace cairn::mvcc {
namespace {

class CountingSink : public WatchSink {
 public:
  bool Deliver(int64_t, int64_t, const EventView& events, bool) override {
    for (size_t i = 0; i < events.size(); ++i) {
      events.CopyTo(i, &scratch_);
      ++delivered_;
    }
    return true;
  }
  void Compacted(int64_t, int64_t) override {}
  void Progress(int64_t, int64_t) override {}
  int64_t delivered() const { return delivered_; }

 private:
  mvccpb::Event scratch_;
  int64_t delivered_ = 0;
};

// A store on a temporary directory and a hub over it (periodic progress off).
class Fixture {
 public:
  Fixture() {
    char tmpl[] = "/tmp/cairn-watch-bench-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto b = storage::Backend::Open(dir_ + "/db");
    CAIRN_CHECK(b.ok()) << b.status();
    backend_ = std::move(*b);
    kv_ = std::make_unique<KvStore>(backend_.get());
    hub_ = std::make_unique<WatchHub>(kv_.get(), 0);
    revision_ = hub_->notified_revision();
  }
  ~Fixture() {
    hub_.reset();
    kv_.reset();
    backend_.reset();
    std::filesystem::remove_all(dir_);
  }
  void WatchPrefix(WatchSink* sink, int64_t id, const std::string& prefix) {
    WatchSpec spec;
    spec.key = prefix;
    spec.range_end = prefix;
    spec.range_end.back() = static_cast<char>(spec.range_end.back() + 1);
    hub_->Add(sink, id, spec, [](int64_t) {});
  }
  void NotifyPuts(const std::vector<std::string>& keys) {
    std::vector<mvccpb::Event> events(keys.size());
    ++revision_;
    for (size_t i = 0; i < keys.size(); ++i) {
      events[i].set_type(mvccpb::Event::PUT);
      events[i].mutable_kv()->set_key(keys[i]);
      events[i].mutable_kv()->set_value(std::string(256, 'v'));
      events[i].mutable_kv()->set_mod_revision(revision_);
    }
    hub_->Notify(revision_, std::move(events));
  }
  WatchHub* hub() { return hub_.get(); }

 private:
  std::string dir_;
  std::unique_ptr<storage::Backend> backend_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<WatchHub> hub_;
  int64_t revision_ = 0;
};

std::string Distinct(int64_t i) {
  char b[32];
  snprintf(b, sizeof b, "w/%06lld/", static_cast<long long>(i));
  return b;
}

void BM_NotifyDistinctPrefixes(benchmark::State& state) {
  Fixture f;
  CountingSink sink;
  const int64_t n = state.range(0);
  for (int64_t i = 0; i < n; ++i) f.WatchPrefix(&sink, i, Distinct(i));
  int64_t next = 0;
  for (auto _ : state) {
    f.NotifyPuts({Distinct(next++ % n) + "k"});
  }
  state.counters["events_delivered"] = static_cast<double>(sink.delivered());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NotifyDistinctPrefixes)->Arg(100)->Arg(1000)->Arg(10000);

void BM_NotifyOverlappingPrefixes(benchmark::State& state) {
  Fixture f;
  CountingSink sink;
  const int64_t n = state.range(0);
  const char* prefixes[] = {"o/", "o/a", "o/ab", "o/abc"};
  for (int64_t i = 0; i < n; ++i) f.WatchPrefix(&sink, i, prefixes[i % 4]);
  for (auto _ : state) f.NotifyPuts({"o/abcd"});
  state.counters["events_per_revision"] = benchmark::Counter(static_cast<double>(n));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_NotifyOverlappingPrefixes)->Arg(100)->Arg(1000)->Arg(10000);

void BM_NotifyOneWatcherBigRevisions(benchmark::State& state) {
  Fixture f;
  CountingSink sink;
  f.WatchPrefix(&sink, 1, "p/");
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) keys.push_back("p/" + std::to_string(i));
  for (auto _ : state) f.NotifyPuts(keys);
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_NotifyOneWatcherBigRevisions);

void BM_MemoryPerWatcher(benchmark::State& state) {
  const int64_t n = state.range(0);
  double per = 0;
  for (auto _ : state) {
    Fixture f;
    CountingSink sink;
    size_t before = mallinfo2().uordblks;
    for (int64_t i = 0; i < n; ++i) f.WatchPrefix(&sink, i, Distinct(i));
    size_t after = mallinfo2().uordblks;
    per = static_cast<double>(after - before) / static_cast<double>(n);
  }
  state.counters["bytes_per_watcher"] = per;
}
BENCHMARK(BM_MemoryPerWatcher)->Arg(10000)->Iterations(1);

}  // namespace
}  // namespace cairn::mvcc

BENCHMARK_MAIN();
