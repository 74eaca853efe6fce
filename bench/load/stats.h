// Latency and error bookkeeping for cairn-bench, and the report it prints (table and JSON).
//
// Thread contract: a Recorder is owned by one thread (a completion-queue thread); Merge the
// recorders into a Summary after every thread has stopped.
#ifndef CAIRN_BENCH_LOAD_STATS_H_
#define CAIRN_BENCH_LOAD_STATS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cairn::bench {

// Records one thread's operation outcomes: latency of every successful operation and a count of
// failures per gRPC status code.
class Recorder {
 public:
  void RecordOk(int64_t latency_ns) { latencies_ns_.push_back(latency_ns); }
  void RecordError(int grpc_code) { ++errors_[grpc_code]; }

  const std::vector<int64_t>& latencies_ns() const { return latencies_ns_; }
  const std::map<int, int64_t>& errors() const { return errors_; }

 private:
  std::vector<int64_t> latencies_ns_;
  std::map<int, int64_t> errors_;
};

// Percentiles over the merged latencies of one measured quantity (operations or watch events).
struct Summary {
  int64_t ok = 0;
  std::map<int, int64_t> errors;  // gRPC code -> count
  double elapsed_s = 0;
  double throughput = 0;  // ok / elapsed_s
  double mean_ms = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;

  int64_t error_total() const;
};

// Merges the recorders (sorting their latencies) into a Summary over `elapsed_s` seconds.
Summary Summarize(const std::vector<const Recorder*>& recorders, double elapsed_s);

// The gRPC status code's name as in grpc::StatusCode ("UNAVAILABLE"), or "CODE_<n>".
std::string GrpcCodeName(int code);

// One line of the human table: "put  ops 1234  thr 5678.9/s  p50 ... errors {...}".
std::string FormatTableRow(const std::string& name, const Summary& s);
std::string FormatTableHeader();

// {"ok":..,"errors":{"UNAVAILABLE":3},"elapsed_s":..,"throughput":..,"latency_ms":{...}}
std::string SummaryJson(const Summary& s);

// Escapes a string for a JSON string literal (without the quotes).
std::string JsonEscape(const std::string& s);

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_LOAD_STATS_H_
