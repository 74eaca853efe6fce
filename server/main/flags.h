// Command-line flags of `cairn`, with etcd's names and Go-flag syntax (-f, --f, --f=v, --f v; a
// bool flag alone means true). Pure, thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/etcdserver/server.h"

namespace cairn::main {

struct Flags {
  etcdserver::ServerConfig server;
  std::vector<std::string> listen_client_urls{"http://127.0.0.1:2379"};
  std::vector<std::string> listen_client_http_urls;  // HTTP only (the gateway), none by default
  std::vector<std::string> listen_metrics_urls;      // /metrics and /health only
  std::string initial_cluster;        // "name=peerurl,..." (parsed into server.initial_cluster)
  std::string initial_cluster_state;  // "new" or "existing"
  std::string log_level = "info";     // as etcd: the start and stop lines print by default
  std::string log_format = "text";    // --log-format: text or json (etcd's zap fields)
  bool lease_checkpoint = true;       // --experimental-enable-lease-checkpoint
  // --auto-compaction-mode / --auto-compaction-retention, resolved into server.auto_compaction_*.
  std::string auto_compaction_mode = "periodic";
  std::string auto_compaction_retention = "0";
  // --experimental-initial-corrupt-check, --experimental-corrupt-check-time (0: off).
  bool initial_corrupt_check = false;
  int64_t corrupt_check_time_ms = 0;
  bool help = false;
  bool version = false;
};

// Parses argv[1..]. An unknown or malformed flag is an InvalidArgument error naming it.
absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args);
// The --help text: every flag with its default.
std::string Usage();

}  // namespace cairn::main
