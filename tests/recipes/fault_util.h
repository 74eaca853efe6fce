// Helpers of the multi-member and fault tests: a cluster of either kind behind one interface
// (cairn through the public test kit cairn::testing::TestingCluster, etcd through the internal
// harness), and FaultChild, a recipe_fault_child process whose stdout is collected line by line.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cairn/client.h"
#include "cairn/testing/cluster.h"
#include "tests/harness/cluster_ops.h"
#include "tests/harness/server_process.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {

using cairn::testing::TestingCluster;
using cairn::testing::TestingClusterOptions;

// The cairn binary of this build, for the test kit.
inline std::string BuiltCairnBinary() {
#ifdef CAIRN_TEST_CAIRN_BINARY
  return CAIRN_TEST_CAIRN_BINARY;
#else
  return "";
#endif
}

// A cluster with fast Raft timing (heartbeat 50 ms, election 500 ms): cairn through the test kit,
// etcd through the harness.
class AnyCluster {
 public:
  static absl::StatusOr<std::unique_ptr<AnyCluster>> Start(ServerKind kind, int members) {
    auto out = std::unique_ptr<AnyCluster>(new AnyCluster());
    if (kind == ServerKind::kCairn) {
      TestingClusterOptions o;
      o.members = members;
      o.binary = BuiltCairnBinary();
      auto c = TestingCluster::Start(o);
      if (!c.ok()) return c.status();
      out->kit_ = std::move(*c);
    } else {
      ClusterOptions o;
      o.kind = kind;
      o.members = members;
      o.heartbeat_interval_ms = 50;
      o.election_timeout_ms = 500;
      auto c = ServerCluster::Start(o);
      if (!c.ok()) return c.status();
      out->harness_ = std::move(*c);
    }
    return out;
  }

  std::vector<std::string> Endpoints() const {
    return kit_ ? kit_->Endpoints() : harness_->ClientEndpoints();
  }
  std::string EndpointList() const { return absl::StrJoin(Endpoints(), ","); }
  int size() const { return kit_ ? kit_->size() : harness_->size(); }
  absl::StatusOr<int> Leader(std::vector<int> exclude = {}) const {
    if (kit_) return kit_->Leader();
    return cairn::testing::WaitForLeader(*harness_, 30000, exclude);
  }
  void Kill(int member) {
    if (kit_) {
      (void)kit_->Kill(member);
    } else {
      harness_->Kill(member);
    }
  }
  std::unique_ptr<Client> Connect() const {
    ClientOptions o;
    o.endpoints = Endpoints();
    o.dial_timeout = std::chrono::milliseconds(10000);
    o.default_timeout = std::chrono::milliseconds(15000);
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  TestingCluster* kit() { return kit_.get(); }

 private:
  AnyCluster() = default;
  std::unique_ptr<TestingCluster> kit_;
  std::unique_ptr<ServerCluster> harness_;
};

// The recipe_fault_child binary.
inline std::string FaultChildBinary() {
#ifdef RECIPE_FAULT_CHILD_BINARY
  return RECIPE_FAULT_CHILD_BINARY;
#else
  return "";
#endif
}

// A recipe_fault_child process: own process group, killed with the test's thread
// (PR_SET_PDEATHSIG), stdin a pipe for commands, stdout read line by line by a thread, stderr to
// a file. The destructor kills (SIGKILL) and reaps it, so no child outlives its test.
class FaultChild {
 public:
  FaultChild(const std::string& label, const std::vector<std::string>& args) : label_(label) {
    std::vector<std::string> argv_strings = {FaultChildBinary()};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    std::string err_path =
        ::testing::TempDir() + "/fault_child_" + std::to_string(::getpid()) + "_" + label + ".err";
    int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      if (err_fd >= 0) ::dup2(err_fd, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (pid_ > 0) ::setpgid(pid_, pid_);
    ::close(in[0]);
    ::close(out[1]);
    if (err_fd >= 0) ::close(err_fd);
    stdin_fd_ = in[1];
    int out_fd = out[0];
    reader_ = std::thread([this, out_fd] {
      std::string partial;
      char buf[4096];
      while (true) {
        ssize_t n = ::read(out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        partial.append(buf, static_cast<size_t>(n));
        size_t pos;
        while ((pos = partial.find('\n')) != std::string::npos) {
          std::lock_guard<std::mutex> l(mu_);
          lines_.push_back(partial.substr(0, pos));
          partial.erase(0, pos + 1);
        }
      }
      ::close(out_fd);
    });
  }
  ~FaultChild() {
    Kill();
    if (reader_.joinable()) reader_.join();
  }
  FaultChild(const FaultChild&) = delete;
  FaultChild& operator=(const FaultChild&) = delete;

  bool started() const { return pid_ > 0; }
  const std::string& label() const { return label_; }
  bool killed() const { return reaped_; }

  // SIGKILL, then reap. Its stdin is closed only afterwards: a child that saw the end of its
  // stdin first would exit normally and revoke its session's lease, which is not a crash.
  void Kill() {
    if (pid_ > 0 && !reaped_) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
    }
    if (stdin_fd_ >= 0) {
      ::close(stdin_fd_);
      stdin_fd_ = -1;
    }
  }
  void Stop() {
    if (pid_ > 0 && !reaped_) ::kill(-pid_, SIGSTOP);
  }
  void Cont() {
    if (pid_ > 0 && !reaped_) ::kill(-pid_, SIGCONT);
  }
  void Send(const std::string& line) {
    std::string data = line + "\n";
    if (stdin_fd_ >= 0 && ::write(stdin_fd_, data.data(), data.size()) < 0) {
      ADD_FAILURE() << label_ << ": write to stdin failed";
    }
  }

  std::vector<std::string> Lines() const {
    std::lock_guard<std::mutex> l(mu_);
    return lines_;
  }
  // Lines starting with `word` + " " (or equal to `word`), split into words.
  std::vector<std::vector<std::string>> Events(const std::string& word) const {
    std::vector<std::vector<std::string>> out;
    for (const auto& line : Lines()) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (!parts.empty() && parts[0] == word) out.push_back(parts);
    }
    return out;
  }
  // Waits (bounded) for the `n`-th (1-based) line starting with `word`; returns its words.
  std::optional<std::vector<std::string>> WaitEvent(
      const std::string& word, size_t n = 1,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) const {
    std::optional<std::vector<std::string>> found;
    PollUntil(
        [&] {
          auto events = Events(word);
          if (events.size() >= n) found = events[n - 1];
          return found.has_value();
        },
        timeout);
    return found;
  }
  std::string Describe() const { return label_ + " output:\n  " + absl::StrJoin(Lines(), "\n  "); }

 private:
  std::string label_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int stdin_fd_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// Arguments of recipe_fault_child for `mode` against `endpoints` ("a,b,c").
inline std::vector<std::string> ChildArgs(const std::string& mode, const std::string& endpoints,
                                          const std::string& name, int ttl,
                                          std::vector<std::string> more = {}) {
  std::vector<std::string> args = {mode, "--endpoints", endpoints,          "--name",
                                   name, "--ttl",       std::to_string(ttl)};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

inline int64_t ToInt(const std::string& s) { return std::atoll(s.c_str()); }

}  // namespace cairn::recipes_test
