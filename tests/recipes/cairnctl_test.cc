// cairnctl: lock running a command with the lock's key and fencing token in its environment,
// waiting behind a held Mutex and excluding `etcdctl lock`; elect; semaphore; barrier; counter;
// queue; service register/list (with --watch, re-registration after a lost session, bad input);
// bad usage.
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "cairn/recipes/discovery.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/semaphore.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using cairn::testing::RunCommand;

// A child process whose stdin is a pipe held by the test (closing it ends `service register`),
// stdout and stderr to a file; killed with its process group if still running at the end.
class PipedCommand {
 public:
  PipedCommand(const std::vector<std::string>& argv, const std::string& out_path)
      : out_path_(out_path) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int fds[2];
    // Close-on-exec, so that other children started later do not hold the write end open.
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(fds[0], 0);
      ::close(fds[0]);
      ::close(fds[1]);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[0]);
    stdin_ = fds[1];
    if (fd >= 0) ::close(fd);
  }
  ~PipedCommand() {
    CloseStdin();
    if (pid_ > 0 && !exited_) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }
  void CloseStdin() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
  }
  std::string Output() const {
    std::ifstream in(out_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Sends `sig` and waits for the exit (see WaitExit).
  int Signal(int sig) {
    ::kill(pid_, sig);
    return WaitExit();
  }
  // The exit code, or -1 if it did not exit within `timeout` (it is then killed).
  int WaitExit(std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) {
    int status = 0;
    bool done = PollUntil([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
    exited_ = true;
    if (!done) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::string out_path_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  bool exited_ = false;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class CairnctlTest : public RecipeTest {
 protected:
  std::vector<std::string> Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {CAIRNCTL_BINARY, "--endpoints=" + cluster_->ClientUrls()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
};

TEST_P(CairnctlTest, LockRunsCommandWithKeyAndToken) {
  auto r = RunCommand(Ctl({"lock", "ctl/lock", "--ttl=5", "--", "/bin/sh", "-c",
                           "echo \"$CAIRN_LOCK_KEY $CAIRN_FENCING_TOKEN\"; exit 3"}));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;  // the command's exit code
  ASSERT_EQ(r.out.rfind("ctl/lock/", 0), 0u) << r.out;
  std::string token = r.out.substr(r.out.find(' ') + 1);
  while (!token.empty() && token.back() == '\n') token.pop_back();
  int64_t t = 0;
  EXPECT_TRUE(absl::SimpleAtoi(token, &t)) << r.out;
  EXPECT_GT(t, 0);
  EXPECT_TRUE(KeysUnder("ctl/lock/").empty());  // released
}

TEST_P(CairnctlTest, LockWaitsForTheHolderAndExcludesEtcdctl) {
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  recipes::Mutex mu(s, "ctl/held");
  ASSERT_TRUE(mu.Lock(Within(20000)).ok());
  BackgroundCommand ctl(Ctl({"lock", "ctl/held", "--", "/bin/echo", "got-it"}),
                        TempPath("cairnctl"));
  ASSERT_TRUE(ctl.started());
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("ctl/held/").size() == 2; }));
  EXPECT_EQ(ctl.Output().find("got-it"), std::string::npos) << ctl.Output();
  ASSERT_TRUE(mu.Unlock().ok());
  EXPECT_EQ(ctl.WaitExit(std::chrono::milliseconds(30000)), 0) << ctl.Output();
  EXPECT_NE(ctl.Output().find("got-it"), std::string::npos) << ctl.Output();

  // cairnctl holds (no command: until SIGINT); etcdctl lock on the same name waits.
  BackgroundCommand holder(Ctl({"lock", "ctl/held"}), TempPath("holder"));
  ASSERT_TRUE(PollUntil([&] { return holder.Output().find("ctl/held/") != std::string::npos; }))
      << holder.Output();
  BackgroundCommand etcdctl(Etcdctl({"lock", "ctl/held", "/bin/echo", "etcdctl-got-it"}),
                            TempPath("etcdctl"));
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("ctl/held/").size() == 2; }));
  EXPECT_EQ(etcdctl.Output().find("etcdctl-got-it"), std::string::npos) << etcdctl.Output();
  EXPECT_EQ(holder.Terminate(), 0) << holder.Output();
  EXPECT_EQ(etcdctl.WaitExit(std::chrono::milliseconds(30000)), 0) << etcdctl.Output();
  EXPECT_NE(etcdctl.Output().find("etcdctl-got-it"), std::string::npos) << etcdctl.Output();
}

TEST_P(CairnctlTest, ElectCounterQueue) {
  BackgroundCommand leader(Ctl({"elect", "ctl/elect", "ctl-leader", "--ttl=5"}), TempPath("elect"));
  ASSERT_TRUE(PollUntil([&] { return leader.Output().find("ctl-leader") != std::string::npos; }))
      << leader.Output();
  auto etcd_view = RunCommand(Etcdctl({"get", "--prefix", "ctl/elect/", "--print-value-only"}));
  EXPECT_NE(etcd_view.out.find("ctl-leader"), std::string::npos) << etcd_view.out;
  BackgroundCommand listener(Ctl({"elect", "-l", "ctl/elect"}), TempPath("listen"));
  EXPECT_TRUE(PollUntil([&] { return listener.Output().find("ctl-leader") != std::string::npos; }))
      << listener.Output();
  EXPECT_EQ(listener.Terminate(), 0) << listener.Output();
  EXPECT_EQ(leader.Terminate(), 0) << leader.Output();
  EXPECT_TRUE(KeysUnder("ctl/elect/").empty());  // resigned

  auto r = RunCommand(Ctl({"counter", "ctl/count", "add", "5"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "5\n");
  r = RunCommand(Ctl({"counter", "ctl/count", "add", "-2"}));
  EXPECT_EQ(r.out, "3\n");
  r = RunCommand(Ctl({"counter", "ctl/count", "cas", "3", "10"}));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = RunCommand(Ctl({"counter", "ctl/count", "get"}));
  EXPECT_EQ(r.out, "10\n");

  r = RunCommand(Ctl({"queue", "ctl/q", "put", "later", "--priority=5"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand(Ctl({"queue", "ctl/q", "put", "first", "--priority=1"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand(Ctl({"queue", "ctl/q", "size"}));
  EXPECT_EQ(r.out, "2\n");
  r = RunCommand(Ctl({"queue", "ctl/q", "take", "--timeout=10"}));
  EXPECT_EQ(r.out, "first\n") << r.err;
  r = RunCommand(Ctl({"queue", "ctl/q", "take", "--timeout=10"}));
  EXPECT_EQ(r.out, "later\n") << r.err;
  r = RunCommand(Ctl({"queue", "ctl/q", "take", "--timeout=0.2"}));
  EXPECT_EQ(r.exit_code, 1);

  EXPECT_EQ(RunCommand(Ctl({"bogus"})).exit_code, 2);
  EXPECT_EQ(RunCommand(Ctl({"lock"})).exit_code, 2);
  r = RunCommand(Ctl({"lock", "ctl/x", "--ttl=0", "--", "/bin/true"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("ttl"), std::string::npos) << r.err;
}

TEST_P(CairnctlTest, SemaphoreRunsCommandUnderAPermitAndBarrierBlocksUntilRemoved) {
  auto r = RunCommand(Ctl({"semaphore", "ctl/sem", "2", "--ttl=5", "--", "/bin/sh", "-c",
                           "echo \"$CAIRN_LOCK_KEY $CAIRN_FENCING_TOKEN\"; exit 4"}));
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;  // the command's exit code
  EXPECT_EQ(r.out.rfind("ctl/sem/", 0), 0u) << r.out;
  EXPECT_TRUE(KeysUnder("ctl/sem/").empty());  // released
  // Both permits held by others: the command waits until one is released.
  auto s1 = NewSession();
  auto s2 = NewSession();
  ASSERT_NE(s1, nullptr);
  ASSERT_NE(s2, nullptr);
  recipes::Semaphore a(s1, "ctl/sem", 2);
  recipes::Semaphore b(s2, "ctl/sem", 2);
  ASSERT_TRUE(a.Acquire(Within(20000)).ok());
  ASSERT_TRUE(b.Acquire(Within(20000)).ok());
  BackgroundCommand waiting(Ctl({"semaphore", "ctl/sem", "2", "--", "/bin/echo", "permit"}),
                            TempPath("sem"));
  ASSERT_TRUE(waiting.started());
  ASSERT_TRUE(PollUntil([&] { return KeysUnder("ctl/sem/").size() == 3; }));
  EXPECT_EQ(waiting.Output().find("permit"), std::string::npos) << waiting.Output();
  ASSERT_TRUE(a.Release().ok());
  EXPECT_EQ(waiting.WaitExit(std::chrono::milliseconds(30000)), 0) << waiting.Output();
  EXPECT_NE(waiting.Output().find("permit"), std::string::npos) << waiting.Output();
  ASSERT_TRUE(b.Release().ok());
  // Bad input: no permits, no command.
  r = RunCommand(Ctl({"semaphore", "ctl/sem", "0", "--", "/bin/true"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("permits"), std::string::npos) << r.err;
  EXPECT_EQ(RunCommand(Ctl({"semaphore", "ctl/sem", "2"})).exit_code, 2);
  EXPECT_EQ(RunCommand(Ctl({"semaphore", "ctl/sem", "two", "--", "/bin/true"})).exit_code, 2);

  // barrier: wait returns at once while down; set holds waiters until remove.
  EXPECT_EQ(RunCommand(Ctl({"barrier", "ctl/bar", "wait", "--timeout=10"})).exit_code, 0);
  r = RunCommand(Ctl({"barrier", "ctl/bar", "set"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(KeysUnder("ctl/bar").size(), 1u);  // outlives the command: no session
  r = RunCommand(Ctl({"barrier", "ctl/bar", "set"}));
  EXPECT_EQ(r.exit_code, 1) << r.err;  // already held
  r = RunCommand(Ctl({"barrier", "ctl/bar", "wait", "--timeout=0.3"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("DEADLINE_EXCEEDED"), std::string::npos) << r.err;
  BackgroundCommand waiter(Ctl({"barrier", "ctl/bar", "wait"}), TempPath("bar"));
  ASSERT_TRUE(waiter.started());
  r = RunCommand(Ctl({"barrier", "ctl/bar", "remove"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(waiter.WaitExit(std::chrono::milliseconds(30000)), 0) << waiter.Output();
  EXPECT_TRUE(KeysUnder("ctl/bar").empty());
  EXPECT_EQ(RunCommand(Ctl({"barrier", "ctl/bar", "lift"})).exit_code, 2);
}

TEST_P(CairnctlTest, ServiceRegisterListAndWatch) {
  PipedCommand reg(Ctl({"service", "register", "ctl/svc", "i1", "10.0.0.1:80",
                        "--meta={\"zone\": \"a\", \"w\": [1, 2.5e3]}", "--ttl=5"}),
                   TempPath("register"));
  ASSERT_TRUE(reg.started());
  ASSERT_TRUE(PollUntil([&] { return reg.Output().find("registered ctl/svc/i1") == 0; }))
      << reg.Output();
  // etcd's endpoints layout: key NAME/ID, the JSON value with Addr and Metadata, on a lease.
  auto keys = KeysUnder("ctl/svc/");
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].key, "ctl/svc/i1");
  EXPECT_NE(keys[0].value.find("\"Addr\":\"10.0.0.1:80\""), std::string::npos) << keys[0].value;
  EXPECT_NE(keys[0].lease, 0);
  auto r = RunCommand(Ctl({"service", "list", "ctl/svc"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "i1 10.0.0.1:80 {\"zone\": \"a\", \"w\": [1, 2.5e3]}\n");
  // --watch lists what is there (no prefix), then prints each change after that listing.
  BackgroundCommand watcher(Ctl({"service", "list", "ctl/svc", "--watch"}), TempPath("watch"));
  ASSERT_TRUE(watcher.started());
  ASSERT_TRUE(PollUntil([&] { return watcher.Output().find("i1 10.0.0.1:80 {") == 0; }))
      << watcher.Output();

  // A second instance, registered by the library, shows up in the list and the watch.
  auto s = NewSession();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(recipes::RegisterEndpoint(*s, "ctl/svc", {"10.0.0.2:80", ""}).ok());
  EXPECT_TRUE(PollUntil([&] {
    return watcher.Output().find("PUT 10.0.0.2:80 10.0.0.2:80") != std::string::npos;
  })) << watcher.Output();
  r = RunCommand(Ctl({"service", "list", "ctl/svc"}));
  EXPECT_EQ(Count(r.out, "\n"), 2u) << r.out;

  // stdin closes: cairnctl deregisters and exits 0; the watch prints the removal.
  reg.CloseStdin();
  EXPECT_EQ(reg.WaitExit(), 0) << reg.Output();
  EXPECT_NE(reg.Output().find("deregistered ctl/svc/i1"), std::string::npos) << reg.Output();
  EXPECT_EQ(KeysUnder("ctl/svc/i1").size(), 0u);
  EXPECT_TRUE(PollUntil([&] { return watcher.Output().find("DELETE i1") != std::string::npos; }))
      << watcher.Output();
  EXPECT_EQ(watcher.Terminate(), 0) << watcher.Output();
  // Only changes after the first listing are printed with PUT/DELETE, each once.
  EXPECT_EQ(Count(watcher.Output(), "DELETE i1"), 1u) << watcher.Output();

  // A signal ends a registration too.
  PipedCommand reg2(Ctl({"service", "register", "ctl/svc", "i2", "10.0.0.3:80"}), TempPath("r2"));
  ASSERT_TRUE(PollUntil([&] { return reg2.Output().find("registered ctl/svc/i2") == 0; }))
      << reg2.Output();
  r = RunCommand(Ctl({"service", "list", "ctl/svc"}));
  EXPECT_NE(r.out.find("i2 10.0.0.3:80\n"), std::string::npos) << r.out;
  EXPECT_EQ(reg2.Signal(SIGTERM), 0) << reg2.Output();
  EXPECT_NE(reg2.Output().find("deregistered ctl/svc/i2"), std::string::npos) << reg2.Output();
  EXPECT_TRUE(KeysUnder("ctl/svc/").size() == 1u);  // only the library's instance is left
}

TEST_P(CairnctlTest, ServiceRegisterRegistersAgainAfterTheSessionIsLost) {
  PipedCommand reg(Ctl({"service", "register", "ctl/re", "i1", "10.0.0.1:80", "--ttl=3"}),
                   TempPath("register"));
  ASSERT_TRUE(PollUntil([&] { return reg.Output().find("registered ctl/re/i1") == 0; }))
      << reg.Output();
  auto before = KeysUnder("ctl/re/");
  ASSERT_EQ(before.size(), 1u);
  // The session is lost: its lease is revoked elsewhere (as after an expiry), deleting the key.
  ASSERT_TRUE(client_->lease().Revoke(before[0].lease).ok());
  ASSERT_TRUE(PollUntil([&] {
    auto now = KeysUnder("ctl/re/");
    return now.size() == 1 && now[0].lease != before[0].lease;
  })) << reg.Output();
  // The line is printed once the new registration's put returned.
  EXPECT_TRUE(PollUntil([&] { return Count(reg.Output(), "registered ctl/re/i1") == 2; }))
      << reg.Output();
  EXPECT_NE(reg.Output().find("registration lost"), std::string::npos) << reg.Output();
  reg.CloseStdin();
  EXPECT_EQ(reg.WaitExit(), 0) << reg.Output();
  EXPECT_TRUE(KeysUnder("ctl/re/").empty());
}

TEST_P(CairnctlTest, ServiceRejectsBadInput) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"service", "register", "", "i1", "h:1"}, 3, "empty service name"},
      {{"service", "register", "s", "", "h:1"}, 3, "empty instance id"},
      {{"service", "register", "s", "a/b", "h:1"}, 3, "contains '/'"},
      {{"service", "register", "s", "i1", ""}, 3, "empty address"},
      {{"service", "register", "s", "i1", "h:1", "--meta={\"a\":}"}, 3, "not valid JSON"},
      {{"service", "register", "s", "i1", "h:1", "--meta={\"a\":1} x"}, 3, "not valid JSON"},
      {{"service", "register", "s", "i1", "h:1", "--meta=[1,"}, 3, "not valid JSON"},
      {{"service", "register", "s", "i1", "h:1", "--ttl=0"}, 3, "--ttl"},
      {{"service", "register", "s", "i1", "h:1", "--ttl=-4"}, 3, "--ttl"},
      {{"service", "register", "s", "i1", "h:1", "--ttl=soon"}, 3, "--ttl"},
      {{"service", "register", "s", "i1"}, 2, "usage"},
      {{"service", "register", "s", "i1", "h:1", "--color=red"}, 2, "usage"},
      {{"service", "list", ""}, 3, "empty service name"},
      {{"service", "list", "s", "--follow"}, 2, "usage"},
      {{"service", "list"}, 2, "usage"},
      {{"service", "unregister", "s"}, 2, "usage"},
      {{"service"}, 2, "usage"},
  };
  for (const Case& c : cases) {
    auto r = RunCommand(Ctl(c.args));
    std::string shown;
    for (const auto& a : c.args) shown += "[" + a + "] ";
    EXPECT_EQ(r.exit_code, c.exit_code) << shown << r.out << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << shown << r.err;
  }
  EXPECT_TRUE(KeysUnder("s/").empty());  // nothing registered by any of them
  // Checked before connecting: the same answer with no server to reach.
  auto r = RunCommand({CAIRNCTL_BINARY, "--endpoints=127.0.0.1:1", "--dial-timeout=30", "service",
                       "register", "s", "i1", "h:1", "--meta={nope}"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("--meta is not valid JSON: expected a string key at offset 1"),
            std::string::npos)
      << r.err;
}

TEST_P(CairnctlTest, UserAndTlsFlags) {
  // A missing CA file: a clear error before any command runs.
  auto bad = RunCommand(Ctl({"--cacert=/nonexistent/ca.pem", "counter", "ctl/tls", "get"}));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("/nonexistent/ca.pem"), std::string::npos) << bad.err;
  auto usage = RunCommand(Ctl({"--user=", "counter", "ctl/tls", "get"}));
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
  if (GetParam() != cairn::testing::ServerKind::kEtcd) return;  // cairn's auth: the security issue
  ASSERT_EQ(RunCommand(Etcdctl({"user", "add", "root:rootpw"})).exit_code, 0);
  ASSERT_EQ(RunCommand(Etcdctl({"user", "grant-role", "root", "root"})).exit_code, 0);
  ASSERT_EQ(RunCommand(Etcdctl({"auth", "enable"})).exit_code, 0);
  auto ok = RunCommand(Ctl({"--user=root:rootpw", "counter", "ctl/auth", "add", "2"}));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  auto split = RunCommand(Ctl({"--user=root", "--password=rootpw", "counter", "ctl/auth", "get"}));
  EXPECT_EQ(split.exit_code, 0) << split.err;
  EXPECT_NE(split.out.find("2"), std::string::npos) << split.out;
  auto wrong = RunCommand(Ctl({"--user=root:nope", "counter", "ctl/auth", "get"}));
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("authentication failed"), std::string::npos) << wrong.err;
  EXPECT_EQ(RunCommand(Etcdctl({"--user=root:rootpw", "auth", "disable"})).exit_code, 0);
}

INSTANTIATE_TEST_SUITE_P(Servers, CairnctlTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
