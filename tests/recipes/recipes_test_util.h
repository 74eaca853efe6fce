// Helpers shared by the recipe tests: a fresh 1-member server per test (etcd and cairn), client
// connection, bounded polling, and a background command (etcdctl lock/elect) that can be
// stopped with SIGTERM so it releases what it holds.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/client.h"
#include "cairn/recipes/session.h"
#include "tests/harness/cluster_ops.h"
#include "tests/harness/server_process.h"

namespace cairn::recipes_test {

using cairn::testing::ClusterOptions;
using cairn::testing::ServerCluster;
using cairn::testing::ServerKind;

inline std::string KindName(const ::testing::TestParamInfo<ServerKind>& info) {
  return cairn::testing::ServerKindName(info.param);
}

// Polls `pred` every 10 ms until it holds or `timeout` passes (the harness's PollUntil, with the
// recipes' default bound); returns its last value.
inline bool PollUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(20000)) {
  return cairn::testing::PollUntil(pred, timeout, std::chrono::milliseconds(10));
}

// A call bounded by `ms` (a safety net so a broken recipe fails instead of hanging).
inline CallOptions Within(int ms) {
  CallOptions c;
  c.timeout = std::chrono::milliseconds(ms);
  return c;
}

// A child process (own process group, dies with the test) whose stdout and stderr go to a file.
class BackgroundCommand {
 public:
  BackgroundCommand(const std::vector<std::string>& argv, const std::string& out_path)
      : out_path_(out_path) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (fd >= 0) ::close(fd);
  }
  ~BackgroundCommand() {
    if (pid_ > 0 && !exited_) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }
  std::string Output() const {
    std::ifstream in(out_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Sends SIGINT (etcdctl lock/elect release what they hold on it) and waits (bounded) for the
  // exit; returns the exit code (-1 if it had to be
  // killed).
  int Terminate(std::chrono::milliseconds timeout = std::chrono::milliseconds(15000)) {
    if (pid_ <= 0 || exited_) return exit_code_;
    ::kill(pid_, SIGINT);
    return WaitExit(timeout);
  }
  int WaitExit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0 || exited_) return exit_code_;
    int status = 0;
    bool done = PollUntil(
        [&] {
          pid_t r = ::waitpid(pid_, &status, WNOHANG);
          return r == pid_;
        },
        timeout);
    if (!done) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      exited_ = true;
      exit_code_ = -1;
      return -1;
    }
    exited_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }

 private:
  std::string out_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

// A fresh 1-member server of the parameter's kind per test, and a client to it.
class RecipeTest : public ::testing::TestWithParam<ServerKind> {
 protected:
  void SetUp() override {
    ClusterOptions o;
    o.kind = GetParam();
    o.members = 1;
    auto c = ServerCluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
    client_ = Connect();
    ASSERT_NE(client_, nullptr);
  }

  std::unique_ptr<Client> Connect() {
    ClientOptions o;
    o.endpoints = cluster_->ClientEndpoints();
    o.dial_timeout = std::chrono::milliseconds(10000);
    o.default_timeout = std::chrono::milliseconds(15000);
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::shared_ptr<recipes::Session> NewSession(const Client& client, int64_t ttl = 10) {
    recipes::SessionOptions so;
    so.ttl_seconds = ttl;
    auto s = recipes::Session::Create(client, so);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : nullptr;
  }
  std::shared_ptr<recipes::Session> NewSession(int64_t ttl = 10) {
    return NewSession(*client_, ttl);
  }

  // A path for a command's output, unique per test.
  std::string TempPath(const std::string& name) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string base = std::string(info->test_suite_name()) + "_" + info->name();
    for (char& ch : base) {
      if (ch == '/') ch = '_';
    }
    return ::testing::TempDir() + "/" + base + "_" + std::to_string(::getpid()) + "_" + name;
  }

  std::vector<std::string> Etcdctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {cairn::testing::EtcdctlPath(),
                                     "--endpoints=" + cluster_->ClientUrls()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // Keys under `prefix`, in create order.
  std::vector<KeyValue> KeysUnder(const std::string& prefix) {
    GetOptions go;
    go.prefix = true;
    go.sort_target = SortTarget::kCreate;
    go.sort_order = SortOrder::kAscend;
    auto r = client_->kv().Get(prefix, go);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->kvs : std::vector<KeyValue>{};
  }

  std::unique_ptr<ServerCluster> cluster_;
  std::unique_ptr<Client> client_;
};

}  // namespace cairn::recipes_test
