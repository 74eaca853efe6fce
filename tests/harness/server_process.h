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
  // When > 0, every member gets --heartbeat-interval and --election-timeout (milliseconds; both
  // etcd and cairn accept them). Tests that kill leaders use e.g. 50 / 500 to stay fast.
  int heartbeat_interval_ms = 0;
  int election_timeout_ms = 0;
  // Appended to one member's command line (index = member), after extra_args. Shorter than
  // `members` is fine. Members added later (PrepareMember) take theirs from PrepareMember.
  std::vector<std::vector<std::string>> member_extra_args = {};
  // A one-member cairn cluster gets peer URLs too (etcd always listens on one), so that members
  // can be added to it later.
  bool peer_urls_always = false;
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
  // Kills every member not marked removed, starts them all again, then waits until each answers
  // (a member of a multi-member cluster cannot answer before a quorum is back, so one-by-one
  // Restart cannot do this). Errors as for Start.
  absl::Status RestartAll(int timeout_ms = 30000);
  // SIGSTOP / SIGCONT to the member's process group.
  void Pause(int member);
  void Resume(int member);

  std::string DataDir(int member) const;
  std::string LogPath(int member) const;
  // The last `max_bytes` bytes of the member's log file.
  std::string LogTail(int member, size_t max_bytes = 4000) const;
  // Pid of the running member, or -1 after Kill.
  pid_t Pid(int member) const;

  // Waits (bounded by timeout_ms) until the member answers a linearizable Range. A learner
  // (etcd: "etcdserver: rpc not supported for learner") counts as ready once it answers a
  // serializable Range.
  absl::Status WaitReady(int member, int timeout_ms = 30000);

  // ---- Membership changes ----
  // The member's name ("m<index>") and advertised peer URL ("http://127.0.0.1:PORT").
  std::string Name(int member) const;
  std::string PeerUrl(int member) const;

  // Reserves a new member slot (index = the old size()): name, free client and peer ports, data
  // dir and log path, without starting it. Its peer URL is what MemberAdd must be called with;
  // then StartAddedMember launches it. `extra_args` are appended to its command line.
  absl::StatusOr<int> PrepareMember(std::vector<std::string> extra_args = {});

  // Starts a prepared member with --initial-cluster-state existing and --initial-cluster listing
  // every member not marked removed (including itself), as etcd requires after MemberAdd, and
  // waits until it answers (see WaitReady). Restart() of such a member reuses the same flags.
  // Should another process take its client port before it starts, it is started again on a new
  // client port (its peer URL is in the membership already and stays).
  absl::Status StartAddedMember(int member, int timeout_ms = 30000);

  // Marks a member as removed from the cluster (after MemberRemove): kills it, leaves it out of
  // later --initial-cluster lists, and Restart() of it fails. Its index stays valid.
  void MarkRemoved(int member);
  bool IsRemoved(int member) const;
  // True while the member's process is running (started and not killed/removed).
  bool IsRunning(int member) const;
  // Waits up to timeout_ms for the member's process to exit on its own (e.g. after learning it was
  // removed) and reaps it. Returns its exit code (128+signal if signalled); kDeadlineExceeded if
  // it is still running, kFailedPrecondition if it was not running.
  absl::StatusOr<int> WaitExit(int member, int timeout_ms);

 private:
  struct Member;
  explicit ServerCluster(const ClusterOptions& options);
  absl::Status StartAll();
  absl::Status Spawn(int member);
  std::vector<std::string> MemberArgs(int member) const;
  // True if the member's last start failed because its client port was in use.
  bool LostClientPortRace(int member) const;
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

// MakeTestChannel, waited on until it is connected (READY), or nullptr after `timeout_ms`. For
// load writers that assert no write fails: Debian's gRPC 1.51 client now and then fails a first
// connect attempt that never left the client ("UNKNOWN: ipv4:...: No such file or directory": its
// tcp_client_posix reads connect(2)'s errno after calls that may overwrite it; fixed upstream by
// grpc PR #35064), and an RPC that is not wait-for-ready fails at once on a channel in
// TRANSIENT_FAILURE. The channel reconnects by itself; this waits for that instead of counting it
// as a failed write.
std::shared_ptr<grpc::Channel> MakeConnectedTestChannel(const std::string& endpoint,
                                                        int timeout_ms = 30000);

}  // namespace cairn::testing
