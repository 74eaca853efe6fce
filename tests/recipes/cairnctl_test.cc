// cairnctl: lock running a command with the lock's key and fencing token in its environment,
// waiting behind a held Mutex and excluding `etcdctl lock`; elect; semaphore; barrier; counter;
// queue; bad usage.
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/semaphore.h"
#include "tests/recipes/recipes_test_util.h"

namespace cairn::recipes_test {
namespace {

using cairn::testing::RunCommand;

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

INSTANTIATE_TEST_SUITE_P(Servers, CairnctlTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
