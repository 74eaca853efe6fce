#include "bench/load/stats.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace cairn::bench {
namespace {

// Nearest-rank percentile of sorted values, q in [0, 1].
int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  if (rank == 0) rank = 1;
  if (rank > sorted.size()) rank = sorted.size();
  return sorted[rank - 1];
}

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

}  // namespace

int64_t Summary::error_total() const {
  int64_t n = 0;
  for (const auto& [code, count] : errors) n += count;
  return n;
}

Summary Summarize(const std::vector<const Recorder*>& recorders, double elapsed_s) {
  Summary s;
  std::vector<int64_t> all;
  size_t n = 0;
  for (const Recorder* r : recorders) n += r->latencies_ns().size();
  all.reserve(n);
  for (const Recorder* r : recorders) {
    all.insert(all.end(), r->latencies_ns().begin(), r->latencies_ns().end());
    for (const auto& [code, count] : r->errors()) s.errors[code] += count;
  }
  std::sort(all.begin(), all.end());
  s.ok = static_cast<int64_t>(all.size());
  s.elapsed_s = elapsed_s;
  s.throughput = elapsed_s > 0 ? static_cast<double>(s.ok) / elapsed_s : 0;
  if (!all.empty()) {
    long double sum = 0;
    for (int64_t v : all) sum += v;
    s.mean_ms = static_cast<double>(sum / all.size()) / 1e6;
    s.p50_ms = Ms(Percentile(all, 0.50));
    s.p90_ms = Ms(Percentile(all, 0.90));
    s.p99_ms = Ms(Percentile(all, 0.99));
    s.p999_ms = Ms(Percentile(all, 0.999));
    s.max_ms = Ms(all.back());
  }
  return s;
}

std::string GrpcCodeName(int code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))) {
    return kNames[code];
  }
  return "CODE_" + std::to_string(code);
}

std::string FormatTableHeader() {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "%-14s %10s %12s %9s %9s %9s %9s %9s %9s  %s", "measure", "ok",
                "per second", "mean ms", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
                "errors");
  return buf;
}

std::string FormatTableRow(const std::string& name, const Summary& s) {
  std::string errors;
  for (const auto& [code, count] : s.errors) {
    if (!errors.empty()) errors += " ";
    errors += GrpcCodeName(code) + "=" + std::to_string(count);
  }
  if (errors.empty()) errors = "none";
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "%-14s %10" PRId64 " %12.1f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f  %s", name.c_str(),
                s.ok, s.throughput, s.mean_ms, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms,
                errors.c_str());
  return buf;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string SummaryJson(const Summary& s) {
  std::string errors;
  for (const auto& [code, count] : s.errors) {
    if (!errors.empty()) errors.push_back(',');
    errors.push_back('"');
    errors.append(GrpcCodeName(code));
    errors.append("\":");
    errors.append(std::to_string(count));
  }
  char buf[768];
  std::snprintf(buf, sizeof(buf),
                "{\"ok\":%" PRId64 ",\"error_total\":%" PRId64
                ",\"errors\":{%s},\"elapsed_s\":%.6f,\"throughput\":%.3f,"
                "\"latency_ms\":{\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,"
                "\"p99.9\":%.4f,\"max\":%.4f}}",
                s.ok, s.error_total(), errors.c_str(), s.elapsed_s, s.throughput, s.mean_ms,
                s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms);
  return buf;
}

}  // namespace cairn::bench
