// Cairn's test kit (cairn::testing, like Curator's TestingServer/TestingCluster): real `cairn`
// server processes for your own tests, on ephemeral loopback ports, in temporary data dirs.
//
//   #include "cairn/testing/cluster.h"
//
//   cairn::testing::TestingClusterOptions options;
//   options.members = 3;
//   auto cluster = cairn::testing::TestingCluster::Start(options);
//   if (!cluster.ok()) return cluster.status();      // e.g. NOT_FOUND: no cairn binary
//   auto client = (*cluster)->Connect();              // a cairn::Client to every member
//   auto leader = (*cluster)->Leader();               // index of the Raft leader
//   (*cluster)->Kill(*leader);                        // SIGKILL
//   (*cluster)->Restart(*leader);                     // same data dir and ports
//   (*cluster)->WaitReady();                          // a leader, linearizable reads everywhere
//
// Members are indexed [0, size()). Each member is a child process in its own process group,
// started with prctl(PR_SET_PDEATHSIG, SIGKILL): it is killed when the thread that started it
// exits, so no server outlives a crashed test. Start, Restart and the destructor must therefore
// run on a thread that outlives the cluster (in GoogleTest: the test's own thread). The destructor
// kills every member it started and removes the temporary directory (kept when the environment
// has CAIRN_KEEP_TEST_DIRS, or TestingClusterOptions::keep_dirs). Each member's output goes to a
// log file in that directory; its tail is part of the error when a member fails to start.
//
// The cairn binary is, in this order: TestingClusterOptions::binary; the environment variable
// CAIRN_BINARY; `cairn` in the bin directory this package was installed to; `cairn` on PATH.
//
// Thread-compatible: calls on one TestingCluster must not overlap. Every wait is bounded by a
// deadline; nothing sleeps in place of a condition. Linux only (prctl).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/client.h"

namespace cairn::testing {

struct TestingClusterOptions {
  // Number of members, in [1, 5].
  int members = 1;
  // Path of the cairn binary; empty: see FindCairnBinary.
  std::string binary;
  // Raft timing of every member (--heartbeat-interval, --election-timeout), in milliseconds.
  // Short by default so that a killed leader is replaced quickly; 0 keeps the server's default.
  int heartbeat_interval_ms = 50;
  int election_timeout_ms = 500;
  // Appended to every member's command line (cairn accepts etcd's flag names).
  std::vector<std::string> extra_args;
  // The server's --log-level ("error" keeps the logs small).
  std::string log_level = "error";
  // Bound of Start (all members up, a leader, a linearizable read through each member).
  std::chrono::milliseconds start_timeout{60000};
  // Parent of the temporary directory; empty: $TMPDIR, else /tmp.
  std::string temp_root;
  // Keep the temporary directory (data dirs and logs) after the cluster is destroyed.
  bool keep_dirs = false;
};

// Locates the cairn binary: `explicit_path` when not empty, else $CAIRN_BINARY, else the installed
// `<prefix>/bin/cairn` (the path this library was configured with), else `cairn` on PATH.
// NOT_FOUND, naming every place tried, when none is an executable file; an explicit path or
// $CAIRN_BINARY that is not executable is NOT_FOUND at once (no fallback hides a typo).
absl::StatusOr<std::string> FindCairnBinary(const std::string& explicit_path = "");

class TestingCluster {
 public:
  // Starts `options.members` members and waits (bounded by options.start_timeout) until the
  // cluster is ready (see WaitReady). A port taken by someone else between choosing it and the
  // server binding it is retried with fresh ports (a bounded number of times). Errors:
  // INVALID_ARGUMENT (members outside [1, 5]); NOT_FOUND (no binary); UNAVAILABLE with the log
  // tail when the members do not come up; DEADLINE_EXCEEDED when they come up but not ready in
  // time; INTERNAL on a failed system call.
  static absl::StatusOr<std::unique_ptr<TestingCluster>> Start(TestingClusterOptions options = {});

  // Kills every member it started (SIGKILL; a paused member too), reaps them and removes the
  // temporary directory.
  ~TestingCluster();

  TestingCluster(const TestingCluster&) = delete;
  TestingCluster& operator=(const TestingCluster&) = delete;

  int size() const;
  const std::string& binary() const;

  // The member's client endpoint, "127.0.0.1:PORT" (a cairn::ClientOptions endpoint).
  std::string Endpoint(int member) const;
  // Every member's endpoint, in member order.
  std::vector<std::string> Endpoints() const;
  // "http://127.0.0.1:P1,http://127.0.0.1:P2,...", for etcdctl --endpoints.
  std::string ClientUrls() const;
  // ClientOptions with every endpoint and test-friendly timeouts (dial 10 s, calls 15 s).
  ClientOptions MakeClientOptions() const;
  // A client to every member (Client::Connect(MakeClientOptions())).
  absl::StatusOr<std::unique_ptr<Client>> Connect() const;

  // SIGKILL to the member's process group, then reaps it. OK (a no-op) when it is not running.
  absl::Status Kill(int member);
  // Starts a killed member again with the same name, ports and data dir, and waits (bounded by
  // `timeout`) until it answers Maintenance.Status. It may not yet serve linearizable reads (a
  // member without a quorum cannot); call WaitReady for that. A running member is killed first.
  // Errors: UNAVAILABLE with the log tail if it exits (e.g. its port was taken meanwhile) or does
  // not answer in time.
  absl::Status Restart(int member,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));
  // SIGSTOP / SIGCONT to the member's process group. FAILED_PRECONDITION when not running.
  absl::Status Pause(int member);
  absl::Status Resume(int member);
  bool IsRunning(int member) const;
  bool IsPaused(int member) const;
  // Pid of the running member, -1 when it is not running.
  pid_t Pid(int member) const;

  // Waits (bounded) until a running, unpaused member reports itself leader and every other
  // running, unpaused member that answers names the same leader; returns its index.
  // DEADLINE_EXCEEDED, with what each member said last, otherwise.
  absl::StatusOr<int> Leader(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) const;
  // The member's Raft member id (Maintenance.Status header.member_id); waits for it to answer.
  absl::StatusOr<MemberId> MemberIdOf(
      int member, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) const;
  // Waits (bounded) until the cluster is ready: a leader agreed on (see Leader) and a
  // linearizable read served through every running, unpaused member. UNAVAILABLE with the log
  // tail when a member process exited; DEADLINE_EXCEEDED otherwise.
  absl::Status WaitReady(std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

  std::string DataDir(int member) const;
  std::string LogPath(int member) const;
  // The last `max_bytes` bytes of the member's log.
  std::string LogTail(int member, size_t max_bytes = 4000) const;

 private:
  struct Member;
  explicit TestingCluster(TestingClusterOptions options);
  absl::Status StartAll();
  absl::Status Spawn(int member);
  // Reaps the member if its process exited; returns the error describing the exit then.
  absl::Status CheckAlive(int member);
  // Checks (once per start of the member) through MemberList that the server answering on the
  // member's client port is that member (its peer URL), not a stranger that took the port.
  absl::Status VerifyIdentity(int member);
  absl::Status WaitAnswers(int member, std::chrono::steady_clock::time_point deadline);
  std::vector<std::string> MemberArgs(int member) const;
  void KillAll();

  TestingClusterOptions options_;
  std::string binary_;
  std::string root_dir_;
  std::string token_;
  std::vector<std::unique_ptr<Member>> members_;
};

}  // namespace cairn::testing
