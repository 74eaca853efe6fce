// Test harness: real etcd or cairn server processes on ephemeral loopback ports.
//
//   auto cluster = ServerCluster::Start({.kind = ServerKind::kEtcd, .members = 3});
//   ASSERT_TRUE(cluster.ok()) << cluster.status();
//   auto channel = MakeTestChannel((*cluster)->ClientEndpoint(0));
//
// Every server is a child process in its own process group, started with
// prctl(PR_SET_PDEATHSIG, SIGKILL), so it dies with the thread that started it even if the test
// crashes. Start, Restart and the destructor must therefore be called from a thread that outlives
// the cluster (in GoogleTest: the test's own thread). Output of each member goes to a log file in
// the cluster's temporary directory; its tail is included in the error when startup fails.
#pragma once

#include <sys/types.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace grpc {
class Channel;
}

namespace cairn::testing {

enum class ServerKind { kEtcd, kCairn };

// "etcd" or "cairn".
std::string ServerKindName(ServerKind kind);

// For GoogleTest parameter printing.
void PrintTo(ServerKind kind, std::ostream* os);

// True when the server's binary exists and is executable: /usr/bin/etcd (or $ETCD_BINARY) for
// kEtcd; the `cairn` target's output (compile definition CAIRN_BINARY, overridden by the
// environment variable CAIRN_BINARY) for kCairn.
bool ServerAvailable(ServerKind kind);

// Path of the server binary ("" when unknown).
std::string ServerBinary(ServerKind kind);

// True when the build has a `cairn` target, i.e. tests against cairn are required (not skipped).
bool CairnBuilt();

// The kinds tests must run against: etcd when its binary is present, and cairn whenever the build
// has the `cairn` target (even if the binary is missing at run time: then the tests fail, they do
// not silently pass). For INSTANTIATE_TEST_SUITE_P(..., ::testing::ValuesIn(TestedServerKinds())).
std::vector<ServerKind> TestedServerKinds();

struct ClusterOptions {
  ServerKind kind = ServerKind::kEtcd;
  int members = 1;
  // Appended to every member's command line.
  std::vector<std::string> extra_args = {};
};

// A running cluster of `members` server processes. Thread-compatible: calls must not overlap.
// Member indexes are in [0, size()).
class ServerCluster {
 public:
  // Starts all members and waits (bounded) until each answers a linearizable Range over gRPC.
  // A member whose port was taken between choosing and binding is retried with fresh ports (a
  // bounded number of times). Errors: kUnavailable with the log tail when the servers do not come
  // up; kNotFound when the binary is missing; kInternal on local system-call failures.
  static absl::StatusOr<std::unique_ptr<ServerCluster>> Start(const ClusterOptions& options);

  // SIGTERM to every running member, a bounded wait, then SIGKILL; removes the temporary
  // directory with all data dirs and logs (kept when the environment has CAIRN_KEEP_TEST_DIRS).
  ~ServerCluster();

  ServerCluster(const ServerCluster&) = delete;
  ServerCluster& operator=(const ServerCluster&) = delete;

  ServerKind kind() const;
  int size() const;
  // "127.0.0.1:PORT", for gRPC.
  std::string ClientEndpoint(int member) const;
  std::vector<std::string> ClientEndpoints() const;
  // "http://127.0.0.1:P1,http://127.0.0.1:P2", for etcdctl --endpoints.
  std::string ClientUrls() const;

  // SIGKILL to the member's process group, then reaps it. No-op when not running.
  void Kill(int member);
  // Starts a killed (or crashed) member again with the same name, ports and data dir, and waits
  // until it answers. A still-running member is killed first. Errors as for Start.
  absl::Status Restart(int member);
  // SIGSTOP / SIGCONT to the member's process group.
  void Pause(int member);
  void Resume(int member);

  std::string DataDir(int member) const;
  std::string LogPath(int member) const;
  // The last `max_bytes` bytes of the member's log file.
  std::string LogTail(int member, size_t max_bytes = 4000) const;
  // Pid of the running member, or -1 after Kill.
  pid_t Pid(int member) const;

  // Waits (bounded by timeout_ms) until the member answers a linearizable Range.
  absl::Status WaitReady(int member, int timeout_ms = 30000);

 private:
  struct Member;
  explicit ServerCluster(const ClusterOptions& options);
  absl::Status StartAll();
  absl::Status Spawn(int member);
  std::vector<std::string> MemberArgs(int member) const;
  void KillAll();

  ClusterOptions options_;
  std::string binary_;
  std::string root_dir_;
  std::string token_;
  std::vector<Member> members_;
};

struct CommandResult {
  int exit_code =
      -1;  // the child's exit status; 128+signal if killed; -1 on timeout or exec failure
  std::string out;
  std::string err;
};

// Runs argv[0] (searched in PATH when it has no '/') with `stdin_data` on its stdin, collecting
// stdout and stderr. Kills the child's process group on timeout (exit_code -1). Thread-safe.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_data = "",
                         int timeout_ms = 30000);

// /usr/bin/etcdctl, or $ETCDCTL_BINARY.
std::string EtcdctlPath();

// An insecure gRPC channel to "host:port" with short reconnect backoff, no message size limit
// on receive, and its own subchannel pool (so a killed server's backoff does not leak between
// tests).
std::shared_ptr<grpc::Channel> MakeTestChannel(const std::string& endpoint);

}  // namespace cairn::testing
