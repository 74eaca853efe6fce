// cairn-bench: a load generator for any etcd v3 endpoint (cairn or etcd), modelled on etcd's
// tools/benchmark. See bench/README.md.
//
//   cairn-bench [flags] <workload>
//   workloads: put range txn-put delete watch lease-keepalive lock election scan fsync-probe
//
// Flags may be spelled etcd-style with dashes (--key-size) or with underscores (--key_size).
// Prints a table to stdout; --json FILE also writes the result as one JSON object ('-': stdout,
// instead of the table). Exit status: 0 when measured (even with errors counted), 1 on a setup
// failure (cannot connect), 2 on a usage error.
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "bench/load/workloads.h"

ABSL_FLAG(std::string, endpoints, "127.0.0.1:2379", "Comma-separated host:port endpoints.");
ABSL_FLAG(int, conns, 1, "gRPC connections (round-robin over the endpoints).");
ABSL_FLAG(int, clients, 1, "Concurrent clients; each runs one request at a time.");
ABSL_FLAG(int64_t, total, 10000, "Total operations (ignored when --duration is set).");
ABSL_FLAG(double, duration, 0, "Run for this many seconds instead of --total operations.");
ABSL_FLAG(double, rate, 0, "Target operations per second over all clients (0: unlimited).");
ABSL_FLAG(int, threads, 0, "Completion-queue threads (0: one per CPU).");
ABSL_FLAG(double, timeout, 30, "Per-request deadline in seconds.");
ABSL_FLAG(double, dial_timeout, 10, "Seconds to wait for the connections.");
ABSL_FLAG(std::string, user, "",
          "Authenticate as this user ('name:password', as etcd's benchmark; or with --password); "
          "every request then carries the token (simple or JWT).");
ABSL_FLAG(std::string, password, "", "The password of --user (when --user has no ':').");
ABSL_FLAG(int, key_size, 8, "Key bytes (prefix + zero-padded key number).");
ABSL_FLAG(int, val_size, 8, "Value bytes.");
ABSL_FLAG(int64_t, key_space_size, 1, "Number of distinct keys.");
ABSL_FLAG(bool, sequential_keys, false, "Walk the key space in order instead of at random.");
ABSL_FLAG(std::string, key_prefix, "", "Prefix of every generated key.");
ABSL_FLAG(std::string, consistency, "l", "range: l (linearizable) or s (serializable).");
ABSL_FLAG(std::string, key, "", "range: the key (default: the first generated key).");
ABSL_FLAG(bool, prefix, false, "range: every key with --key as prefix.");
ABSL_FLAG(int64_t, limit, 0,
          "range: maximum keys returned (0: no limit); scan: keys a page (0: 1000).");
ABSL_FLAG(int, txn_ops, 1, "txn-put: puts per transaction.");
ABSL_FLAG(int, streams, 10, "watch: Watch streams.");
ABSL_FLAG(int, watchers_per_stream, 10, "watch: watchers on each stream.");
ABSL_FLAG(int, watched_key_total, 1, "watch: distinct watched keys.");
ABSL_FLAG(bool, watch_prefix, false,
          "watch: each watcher watches its key as a prefix; puts go to keys under it.");
ABSL_FLAG(int, prefix_nesting, 1,
          "watch (--watch-prefix): watcher g drops the last (g / watched-key-total) % N digits "
          "of its prefix, so prefixes nest and one put matches many watchers.");
ABSL_FLAG(int64_t, put_total, 1000, "watch: puts to the watched keys after all are created.");
ABSL_FLAG(double, put_rate, 100, "watch: puts per second (0: unlimited).");
ABSL_FLAG(int64_t, hold_ms, 0,
          "watch: hold the watchers this long after creating them (for memory readings).");
ABSL_FLAG(double, drain_timeout, 10, "watch: seconds to wait for the last events.");
ABSL_FLAG(int64_t, lease_ttl, 60, "lease-keepalive, lock, election: lease TTL in seconds.");
ABSL_FLAG(int, lock_names, 1, "lock, election: distinct lock/election names contended for.");
ABSL_FLAG(std::string, json, "", "Write the result as JSON to this file ('-': stdout).");
ABSL_FLAG(std::string, dir, ".", "fsync-probe: directory to write the probe file in.");
ABSL_FLAG(int64_t, size, 22 * 1024 * 1024, "fsync-probe: bytes to write (fio --size=22m).");
ABSL_FLAG(int, bs, 2300, "fsync-probe: bytes per write, each followed by fdatasync.");

namespace cairn::bench {
namespace {

constexpr char kWorkloads[] =
    "put range txn-put delete watch lease-keepalive lock election scan fsync-probe";

// etcd's benchmark spells flags with dashes; absl wants underscores in the name.
std::vector<char*> NormalizeFlagNames(int argc, char** argv, std::vector<std::string>* storage) {
  storage->reserve(argc);
  std::vector<char*> out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && a.size() > 2 && a[0] == '-' && a[1] == '-') {
      size_t end = a.find('=');
      if (end == std::string::npos) end = a.size();
      for (size_t k = 2; k < end; ++k) {
        if (a[k] == '-') a[k] = '_';
      }
    }
    storage->push_back(a);
  }
  for (auto& s : *storage) out.push_back(s.data());
  return out;
}

std::string ParamsJson(const std::string& workload, const WorkloadOptions& o) {
  std::string eps;
  for (const auto& e : o.engine.endpoints) {
    if (!eps.empty()) eps += ",";
    eps += e;
  }
  char buf[1024];
  std::snprintf(buf, sizeof(buf),
                "{\"workload\":\"%s\",\"endpoints\":\"%s\",\"conns\":%d,\"clients\":%d,"
                "\"threads\":%d,\"total\":%lld,\"duration_s\":%.3f,\"rate\":%.3f,"
                "\"key_size\":%d,\"val_size\":%d,\"key_space_size\":%lld,\"sequential_keys\":%s,"
                "\"consistency\":\"%s\",\"prefix\":%s,\"limit\":%lld,\"txn_ops\":%d,"
                "\"streams\":%d,\"watchers_per_stream\":%d,\"watched_key_total\":%d,"
                "\"watch_prefix\":%s,\"prefix_nesting\":%d,"
                "\"put_total\":%lld,\"put_rate\":%.3f,\"lock_names\":%d}",
                JsonEscape(workload).c_str(), JsonEscape(eps).c_str(), o.engine.conns, o.clients,
                o.engine.threads, static_cast<long long>(o.total), o.duration_s, o.rate, o.key_size,
                o.val_size, static_cast<long long>(o.key_space_size),
                o.sequential_keys ? "true" : "false", JsonEscape(o.consistency).c_str(),
                o.prefix ? "true" : "false", static_cast<long long>(o.limit), o.txn_ops, o.streams,
                o.watchers_per_stream, o.watched_key_total, o.watch_prefix ? "true" : "false",
                o.prefix_nesting, static_cast<long long>(o.put_total), o.put_rate, o.lock_names);
  return buf;
}

std::string ResultJson(const std::string& workload, const WorkloadOptions& o, const Result& r) {
  std::string j = "{\"params\":" + ParamsJson(workload, o);
  j += ",\"error\":\"" + JsonEscape(r.error) + "\"";
  if (r.error.empty()) {
    j += ",\"ops\":" + SummaryJson(r.ops);
    if (r.events) {
      j += ",\"events\":" + SummaryJson(*r.events);
      j += ",\"events_expected\":" + std::to_string(r.events_expected);
    }
    if (r.watch_create_s) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), ",\"watch_create_s\":%.6f", *r.watch_create_s);
      j += buf;
    }
    if (workload == "scan") j += ",\"keys_read\":" + std::to_string(r.keys_read);
  }
  return j + "}";
}

int Main(int argc, char** argv) {
  // Debian's abseil checks every Mutex for lock-order cycles (GraphCycles), a few percent of the
  // client's CPU inside gRPC. The client is the instrument: keep it lean.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(std::string("cairn-bench [flags] <workload>\nworkloads: ") +
                               kWorkloads);
  std::vector<std::string> storage;
  std::vector<char*> args = NormalizeFlagNames(argc, argv, &storage);
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (positional.size() != 2) {
    std::fprintf(stderr, "usage: cairn-bench [flags] <workload>\nworkloads: %s\n", kWorkloads);
    return 2;
  }
  const std::string workload = positional[1];

  WorkloadOptions o;
  o.engine.endpoints = absl::StrSplit(absl::GetFlag(FLAGS_endpoints), ',', absl::SkipWhitespace());
  o.engine.conns = absl::GetFlag(FLAGS_conns);
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  o.engine.threads = threads > 0 ? threads : 1;
  o.engine.request_timeout_s = absl::GetFlag(FLAGS_timeout);
  std::string user = absl::GetFlag(FLAGS_user);
  o.engine.password = absl::GetFlag(FLAGS_password);
  if (size_t colon = user.find(':'); colon != std::string::npos) {
    o.engine.password = user.substr(colon + 1);
    user.resize(colon);
  }
  o.engine.user = user;
  o.dial_timeout_s = absl::GetFlag(FLAGS_dial_timeout);
  o.clients = absl::GetFlag(FLAGS_clients);
  o.total = absl::GetFlag(FLAGS_total);
  o.duration_s = absl::GetFlag(FLAGS_duration);
  o.rate = absl::GetFlag(FLAGS_rate);
  o.key_size = absl::GetFlag(FLAGS_key_size);
  o.val_size = absl::GetFlag(FLAGS_val_size);
  o.key_space_size = absl::GetFlag(FLAGS_key_space_size);
  o.sequential_keys = absl::GetFlag(FLAGS_sequential_keys);
  o.key_prefix = absl::GetFlag(FLAGS_key_prefix);
  o.consistency = absl::GetFlag(FLAGS_consistency);
  o.key = absl::GetFlag(FLAGS_key);
  o.prefix = absl::GetFlag(FLAGS_prefix);
  o.limit = absl::GetFlag(FLAGS_limit);
  o.txn_ops = absl::GetFlag(FLAGS_txn_ops);
  o.streams = absl::GetFlag(FLAGS_streams);
  o.watchers_per_stream = absl::GetFlag(FLAGS_watchers_per_stream);
  o.watched_key_total = absl::GetFlag(FLAGS_watched_key_total);
  o.watch_prefix = absl::GetFlag(FLAGS_watch_prefix);
  o.prefix_nesting = absl::GetFlag(FLAGS_prefix_nesting);
  o.put_total = absl::GetFlag(FLAGS_put_total);
  o.put_rate = absl::GetFlag(FLAGS_put_rate);
  o.hold_ms = absl::GetFlag(FLAGS_hold_ms);
  o.drain_timeout_s = absl::GetFlag(FLAGS_drain_timeout);
  o.lease_ttl_s = absl::GetFlag(FLAGS_lease_ttl);
  o.lock_names = absl::GetFlag(FLAGS_lock_names);
  if (o.engine.endpoints.empty() || o.clients < 1 || o.txn_ops < 1 ||
      (o.total <= 0 && o.duration_s <= 0) || (o.consistency != "l" && o.consistency != "s") ||
      o.prefix_nesting < 1) {
    std::fprintf(stderr, "cairn-bench: invalid flags (see --help)\n");
    return 2;
  }

  Result r;
  if (workload == "fsync-probe") {
    r = RunFsyncProbe(absl::GetFlag(FLAGS_dir), absl::GetFlag(FLAGS_size), absl::GetFlag(FLAGS_bs));
  } else {
    std::optional<Result> run = RunWorkload(workload, o);
    if (!run) {
      std::fprintf(stderr, "cairn-bench: unknown workload '%s'; workloads: %s\n", workload.c_str(),
                   kWorkloads);
      return 2;
    }
    r = std::move(*run);
  }

  const std::string json_path = absl::GetFlag(FLAGS_json);
  if (json_path != "-") {
    if (!r.error.empty()) {
      std::printf("%s: error: %s\n", workload.c_str(), r.error.c_str());
    } else {
      std::printf("%s\n%s\n", FormatTableHeader().c_str(),
                  FormatTableRow(workload == "watch" ? "put" : workload, r.ops).c_str());
      if (r.events) {
        std::printf("%s\n", FormatTableRow("watch event", *r.events).c_str());
        std::printf("events received %lld of %lld expected", static_cast<long long>(r.events->ok),
                    static_cast<long long>(r.events_expected));
        if (r.watch_create_s) std::printf("; watchers created in %.3f s", *r.watch_create_s);
        std::printf("\n");
      }
      if (workload == "scan") {
        std::printf("keys read %lld in %.3f s\n", static_cast<long long>(r.keys_read),
                    r.ops.elapsed_s);
      }
    }
  }
  if (!json_path.empty()) {
    std::string j = ResultJson(workload, o, r) + "\n";
    if (json_path == "-") {
      std::fputs(j.c_str(), stdout);
    } else {
      std::ofstream out(json_path);
      out << j;
      if (!out) {
        std::fprintf(stderr, "cairn-bench: cannot write %s\n", json_path.c_str());
        return 1;
      }
    }
  }
  std::fflush(stdout);
  return r.error.empty() ? 0 : 1;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
