// Metrics: counters, gauges and histograms, rendered as Prometheus text (exposition format
// 0.0.4) for the /metrics endpoint (docs/metrics.md lists every metric cairn exports).
//
//   base::MetricsRegistry registry;                        // one per member, not a global:
//   base::Counter* c = registry.AddCounter("x_total", "What x counts.");  // tests run several
//   c->Inc();                                              // members in one process
//   base::Histogram* h = registry.AddHistogram("y_seconds", "...",
//                                              base::ExponentialBuckets(0.001, 2, 14));
//   h->Observe(seconds);
//   registry.AddCallbackGauge("z", "...", {}, [&] { return double(size()); });  // read at scrape
//   std::string text = registry.RenderPrometheusText();
//
// Series with the same name and different labels form one family (one HELP and TYPE line); a
// family's type and help are those of its first series. Families render in name order, series
// in registration order.
//
// Thread safety: everything is thread-safe. Recording (Inc, Set, Observe) is lock-free (relaxed
// atomics) and never allocates, so it is cheap on the write path. Registration and rendering take
// the registry's mutex; callbacks run under it, at render time, and must not call the registry.
// Instruments live as long as their registry; pointers to them stay valid.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace cairn::base {

// Label name -> value, in the order they render.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double delta);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Buckets are upper bounds (`le`), strictly increasing; +Inf is implicit.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1 (the last is +Inf)
  std::atomic<double> sum_{0};
};

// start, start*factor, ..., count bounds (Prometheus' ExponentialBuckets, as etcd uses).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

class MetricsRegistry {
 public:
  enum class Type { kCounter, kGauge, kHistogram };
  // One sample a collector produces at render time.
  struct Sample {
    MetricLabels labels;
    double value = 0;
  };
  using Collector = std::function<void(std::vector<Sample>*)>;

  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  Counter* AddCounter(const std::string& name, const std::string& help, MetricLabels labels = {});
  Gauge* AddGauge(const std::string& name, const std::string& help, MetricLabels labels = {});
  Histogram* AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds, MetricLabels labels = {});
  // A gauge or counter whose value `read` returns at render time.
  void AddCallbackGauge(const std::string& name, const std::string& help, MetricLabels labels,
                        std::function<double()> read);
  void AddCallbackCounter(const std::string& name, const std::string& help, MetricLabels labels,
                          std::function<double()> read);
  // A family of counters or gauges whose series `collect` lists at render time (per-method
  // request counters, for example). `type` must not be kHistogram.
  void AddCollector(const std::string& name, const std::string& help, Type type, Collector collect);

  std::string RenderPrometheusText() const;

 private:
  struct Series {
    MetricLabels labels;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    Histogram* histogram = nullptr;
    std::function<double()> read;
    Collector collect;
  };
  struct Family {
    std::string help;
    Type type = Type::kCounter;
    std::vector<Series> series;
  };
  Family& FamilyFor(const std::string& name, const std::string& help, Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
  // Instruments, at stable addresses.
  std::deque<Counter> counters_ ABSL_GUARDED_BY(mu_);
  std::deque<Gauge> gauges_ ABSL_GUARDED_BY(mu_);
  std::deque<Histogram> histograms_ ABSL_GUARDED_BY(mu_);
};

// ---- text format helpers (exposed for tests) ----
// A sample value or bucket bound: shortest round-trip decimal, "+Inf", "-Inf", "NaN".
std::string FormatMetricValue(double v);
// Label value escaping: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view v);
// HELP text escaping: backslash and newline.
std::string EscapeHelp(std::string_view v);

// Seconds elapsed on a steady clock since construction, for duration histograms (base is the
// one place that reads the real clock; durations only feed metrics, never decisions).
class Stopwatch {
 public:
  Stopwatch();
  double ElapsedSeconds() const;

 private:
  int64_t start_ns_;
};

// Registers etcd's (Prometheus client's) process_* metrics, read from /proc/self at render time:
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds.
void RegisterProcessMetrics(MetricsRegistry* registry);

}  // namespace cairn::base
