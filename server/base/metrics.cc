#include "server/base/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <dirent.h>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

namespace cairn::base {

void Gauge::Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  // The first bound >= v (Prometheus buckets are inclusive upper bounds); bounds are few.
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) out.push_back(b);
  return out;
}

// ---- registry ----

MetricsRegistry::Family& MetricsRegistry::FamilyFor(const std::string& name,
                                                    const std::string& help, Type type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.help = help;
    it->second.type = type;
  }
  return it->second;
}

Counter* MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                     MetricLabels labels) {
  absl::MutexLock lock(&mu_);
  Counter* c = &counters_.emplace_back();
  Series s;
  s.labels = std::move(labels);
  s.counter = c;
  FamilyFor(name, help, Type::kCounter).series.push_back(std::move(s));
  return c;
}

Gauge* MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                 MetricLabels labels) {
  absl::MutexLock lock(&mu_);
  Gauge* g = &gauges_.emplace_back();
  Series s;
  s.labels = std::move(labels);
  s.gauge = g;
  FamilyFor(name, help, Type::kGauge).series.push_back(std::move(s));
  return g;
}

Histogram* MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds, MetricLabels labels) {
  absl::MutexLock lock(&mu_);
  Histogram* h = &histograms_.emplace_back(std::move(bounds));
  Series s;
  s.labels = std::move(labels);
  s.histogram = h;
  FamilyFor(name, help, Type::kHistogram).series.push_back(std::move(s));
  return h;
}

void MetricsRegistry::AddCallbackGauge(const std::string& name, const std::string& help,
                                       MetricLabels labels, std::function<double()> read) {
  absl::MutexLock lock(&mu_);
  Series s;
  s.labels = std::move(labels);
  s.read = std::move(read);
  FamilyFor(name, help, Type::kGauge).series.push_back(std::move(s));
}

void MetricsRegistry::AddCallbackCounter(const std::string& name, const std::string& help,
                                         MetricLabels labels, std::function<double()> read) {
  absl::MutexLock lock(&mu_);
  Series s;
  s.labels = std::move(labels);
  s.read = std::move(read);
  FamilyFor(name, help, Type::kCounter).series.push_back(std::move(s));
}

void MetricsRegistry::AddCollector(const std::string& name, const std::string& help, Type type,
                                   Collector collect) {
  absl::MutexLock lock(&mu_);
  Series s;
  s.collect = std::move(collect);
  FamilyFor(name, help, type == Type::kHistogram ? Type::kGauge : type)
      .series.push_back(std::move(s));
}

// ---- text format ----

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Whole numbers (counts) in full; the rest as %g with the fewest digits that round-trip, so
  // etcd's bucket bounds read as Go writes them ("0.0001", "8.192").
  if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general);
  return std::string(buf, res.ptr);
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

const char* TypeName(MetricsRegistry::Type t) {
  switch (t) {
    case MetricsRegistry::Type::kCounter:
      return "counter";
    case MetricsRegistry::Type::kGauge:
      return "gauge";
    case MetricsRegistry::Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// `name{labels[,extra]} value\n`
void WriteSample(std::string* out, const std::string& name, const MetricLabels& labels,
                 const std::pair<std::string, std::string>* extra, double value) {
  *out += name;
  if (!labels.empty() || extra != nullptr) {
    *out += '{';
    bool first = true;
    auto add = [&](const std::pair<std::string, std::string>& l) {
      if (!first) *out += ',';
      first = false;
      *out += l.first;
      *out += "=\"";
      *out += EscapeLabelValue(l.second);
      *out += '"';
    };
    for (const auto& l : labels) add(l);
    if (extra != nullptr) add(*extra);
    *out += '}';
  }
  *out += ' ';
  *out += FormatMetricValue(value);
  *out += '\n';
}

void WriteHistogram(std::string* out, const std::string& name, const MetricLabels& labels,
                    const Histogram& h) {
  Histogram::Snapshot s = h.Read();
  for (size_t i = 0; i <= s.bounds.size(); ++i) {
    std::pair<std::string, std::string> le{
        "le", i < s.bounds.size() ? FormatMetricValue(s.bounds[i]) : "+Inf"};
    WriteSample(out, name + "_bucket", labels, &le, static_cast<double>(s.cumulative[i]));
  }
  WriteSample(out, name + "_sum", labels, nullptr, s.sum);
  WriteSample(out, name + "_count", labels, nullptr, static_cast<double>(s.count));
}

}  // namespace

std::string MetricsRegistry::RenderPrometheusText() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    out += "# HELP " + name + " " + EscapeHelp(family.help) + "\n";
    out += "# TYPE " + name + " " + TypeName(family.type) + "\n";
    for (const Series& s : family.series) {
      if (s.histogram != nullptr) {
        WriteHistogram(&out, name, s.labels, *s.histogram);
      } else if (s.counter != nullptr) {
        WriteSample(&out, name, s.labels, nullptr, static_cast<double>(s.counter->value()));
      } else if (s.gauge != nullptr) {
        WriteSample(&out, name, s.labels, nullptr, s.gauge->value());
      } else if (s.read) {
        WriteSample(&out, name, s.labels, nullptr, s.read());
      } else if (s.collect) {
        std::vector<Sample> samples;
        s.collect(&samples);
        for (const Sample& sample : samples) {
          WriteSample(&out, name, sample.labels, nullptr, sample.value);
        }
      }
    }
  }
  return out;
}

// ---- stopwatch ----

Stopwatch::Stopwatch()
    : start_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count()) {}

double Stopwatch::ElapsedSeconds() const {
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  return static_cast<double>(now - start_ns_) / 1e9;
}

// ---- process metrics (Linux /proc) ----

namespace {

// Fields of /proc/self/stat after the command name: [0] is state (field 3).
std::vector<std::string> ProcStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> fields;
  size_t close = line.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 1));
  std::string f;
  while (rest >> f) fields.push_back(f);
  return fields;
}

double ProcStatField(int field_number) {  // 1-based, as proc(5) numbers them
  std::vector<std::string> f = ProcStatFields();
  size_t i = static_cast<size_t>(field_number - 3);
  return i < f.size() ? std::strtod(f[i].c_str(), nullptr) : 0;
}

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory's own descriptor
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
  }
  return 0;
}

}  // namespace

void RegisterProcessMetrics(MetricsRegistry* r) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  r->AddCallbackCounter("process_cpu_seconds_total",
                        "Total user and system CPU time spent in seconds.", {},
                        [ticks] { return (ProcStatField(14) + ProcStatField(15)) / ticks; });
  r->AddCallbackGauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                      [page] { return ProcStatField(24) * page; });
  r->AddCallbackGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {},
                      [] { return ProcStatField(23); });
  r->AddCallbackGauge("process_open_fds", "Number of open file descriptors.", {}, OpenFds);
  r->AddCallbackGauge("process_max_fds", "Maximum number of open file descriptors.", {}, [] {
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    return lim.rlim_cur == RLIM_INFINITY ? INFINITY : static_cast<double>(lim.rlim_cur);
  });
  const double start = BootTimeSeconds() + ProcStatField(22) / ticks;
  r->AddCallbackGauge("process_start_time_seconds",
                      "Start time of the process since unix epoch in seconds.", {},
                      [start] { return start; });
}

}  // namespace cairn::base
