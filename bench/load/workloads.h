// The workloads of cairn-bench. Each runs against any etcd v3 endpoint and returns a Result that
// main prints as a table row and as JSON.
#ifndef CAIRN_BENCH_LOAD_WORKLOADS_H_
#define CAIRN_BENCH_LOAD_WORKLOADS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/load/engine.h"
#include "bench/load/stats.h"

namespace cairn::bench {

struct WorkloadOptions {
  EngineOptions engine;
  double dial_timeout_s = 10;
  int clients = 1;
  int64_t total = 10000;
  double duration_s = 0;
  double rate = 0;

  // Keys: key_prefix followed by the key number, zero-padded to key_size bytes in all.
  int key_size = 8;
  int val_size = 8;
  int64_t key_space_size = 1;
  bool sequential_keys = false;
  std::string key_prefix;

  // range
  std::string consistency = "l";  // "l" linearizable or "s" serializable
  std::string key;                // range: the key (default: the first generated key)
  bool prefix = false;            // range over every key with `key` as prefix
  int64_t limit = 0;

  // txn-put
  int txn_ops = 1;

  // watch
  int streams = 10;
  int watchers_per_stream = 10;
  int watched_key_total = 1;
  // Prefix watchers: watcher g watches every key starting with its watched key, minus the last
  // (g / watched_key_total) % prefix_nesting digits (1: no trimming, so distinct prefixes); a put
  // then goes to "<watched key>/<n % key_space_size>" instead of the watched key itself.
  bool watch_prefix = false;
  int prefix_nesting = 1;
  int64_t put_total = 1000;
  double put_rate = 100;
  int64_t hold_ms = 0;
  double drain_timeout_s = 10;

  // lease-keepalive, lock, election
  int64_t lease_ttl_s = 60;
  int lock_names = 1;
};

struct Result {
  std::string error;  // a setup failure (cannot connect); then nothing was measured
  Summary ops;
  std::optional<Summary> events;         // watch: put -> event latency
  std::optional<double> watch_create_s;  // watch: time to create every watcher
  int64_t events_expected = 0;
  int64_t keys_read = 0;  // scan: keys returned over all pages
};

// Formats key number n as key_prefix + zero-padded digits, key_size bytes in all (longer when
// key_size is too small for the number).
std::string MakeKey(const WorkloadOptions& o, int64_t n);

// Runs a workload by name: put, range, txn-put, delete, watch, lease-keepalive, lock, election.
// Returns nullopt for an unknown name.
std::optional<Result> RunWorkload(const std::string& name, const WorkloadOptions& o);

// Measures fdatasync latency like `fio --rw=write --ioengine=sync --fdatasync=1 --size=<size>
// --bs=<block>` in a file under `dir` (removed afterwards).
Result RunFsyncProbe(const std::string& dir, int64_t size_bytes, int block_bytes);

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_LOAD_WORKLOADS_H_
