// The public test kit, cairn::testing::TestingCluster (testing/include/cairn/testing/cluster.h):
// a 3-member cluster started, its leader found, killed, restarted, a member paused and resumed,
// the whole cluster killed and restarted;
// bad options and a missing binary reported clearly; members gone with the kit's process.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cairn/testing/cluster.h"
#include "tests/recipes/fault_util.h"

namespace cairn::recipes_test {
namespace {

using cairn::testing::FindCairnBinary;

// True once `pid` no longer runs (gone, or a zombie not yet reaped by its new parent).
bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  stat >> pid_field >> comm >> state;
  return !stat || state == "Z";
}

TEST(TestingKitTest, ThreeMembersKillRestartPauseResume) {
  TestingClusterOptions o;
  o.members = 3;
  o.binary = BuiltCairnBinary();
  auto cluster = TestingCluster::Start(o);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  TestingCluster& c = **cluster;
  ASSERT_EQ(c.size(), 3);
  EXPECT_EQ(c.Endpoints().size(), 3u);
  EXPECT_NE(c.Endpoint(0), c.Endpoint(1));
  std::vector<std::string> dirs;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(c.IsRunning(i));
    EXPECT_GT(c.Pid(i), 0);
    EXPECT_TRUE(std::filesystem::exists(c.DataDir(i)));
    dirs.push_back(c.DataDir(i));
  }
  auto client = c.Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->kv().Put("kit/a", "1", {}, Within(15000)).ok());

  auto leader = c.Leader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  auto leader_id = c.MemberIdOf(*leader);
  ASSERT_TRUE(leader_id.ok()) << leader_id.status();
  auto status = (*client)->maintenance().Status(c.Endpoint((*leader + 1) % 3), Within(10000));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->leader, *leader_id);

  // Kill the leader: another member leads, writes go on.
  const pid_t old_pid = c.Pid(*leader);
  ASSERT_TRUE(c.Kill(*leader).ok());
  EXPECT_FALSE(c.IsRunning(*leader));
  EXPECT_EQ(c.Pid(*leader), -1);
  EXPECT_TRUE(ProcessGone(old_pid));
  auto next = c.Leader();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(*next, *leader);
  ASSERT_TRUE((*client)->kv().Put("kit/b", "2", {}, Within(15000)).ok());

  // Restart it on the same data dir and ports: it catches up.
  ASSERT_TRUE(c.Restart(*leader).ok());
  ASSERT_TRUE(c.WaitReady().ok());
  auto id_again = c.MemberIdOf(*leader);
  ASSERT_TRUE(id_again.ok());
  EXPECT_EQ(*id_again, *leader_id);
  ClientOptions only;
  only.endpoints = {c.Endpoint(*leader)};
  auto restarted = Client::Connect(only);
  ASSERT_TRUE(restarted.ok());
  auto b = (*restarted)->kv().Get("kit/b", {}, Within(15000));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->kvs.size(), 1u);

  // Pause a follower: the other two still serve; resumed, it is ready again.
  auto current = c.Leader();
  ASSERT_TRUE(current.ok());
  int follower = (*current + 1) % 3;
  ASSERT_TRUE(c.Pause(follower).ok());
  EXPECT_TRUE(c.IsPaused(follower));
  // Through a client of the other two members: a request already sent to a frozen member waits
  // for its deadline (the client cannot know it never reached the store).
  ClientOptions others;
  for (int i = 0; i < 3; ++i) {
    if (i != follower) others.endpoints.push_back(c.Endpoint(i));
  }
  auto live = Client::Connect(others);
  ASSERT_TRUE(live.ok()) << live.status();
  ASSERT_TRUE((*live)->kv().Put("kit/c", "3", {}, Within(15000)).ok());
  auto during = c.Leader();
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_NE(*during, follower);
  ASSERT_TRUE(c.Resume(follower).ok());
  EXPECT_FALSE(c.IsPaused(follower));
  ASSERT_TRUE(c.WaitReady().ok());

  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) pids.push_back(c.Pid(i));
  ASSERT_TRUE(c.Pause(0).ok());  // the destructor kills paused members too
  cluster->reset();
  for (pid_t pid : pids) EXPECT_TRUE(ProcessGone(pid)) << pid;
  if (std::getenv("CAIRN_KEEP_TEST_DIRS") == nullptr) {
    for (const auto& dir : dirs) EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
  }
}

// Every member killed, then restarted one by one on its data dir: the cluster is ready again
// (WaitReady) with the data written before.
TEST(TestingKitTest, WholeClusterRestartKeepsTheData) {
  TestingClusterOptions o;
  o.members = 3;
  o.binary = BuiltCairnBinary();
  auto cluster = TestingCluster::Start(o);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  TestingCluster& c = **cluster;
  {
    auto client = c.Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE((*client)->kv().Put("kit/durable", "yes", {}, Within(15000)).ok());
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.Kill(i).ok());
  EXPECT_FALSE(c.Leader(std::chrono::milliseconds(200)).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.Restart(i).ok()) << c.LogTail(i);
  ASSERT_TRUE(c.WaitReady().ok());
  auto client = c.Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto got = (*client)->kv().Get("kit/durable", {}, Within(15000));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "yes");
}

// A member restarted while someone else listens on its client port: Restart fails with the
// member's log instead of talking to the stranger; once the port is free it restarts.
TEST(TestingKitTest, RestartOnATakenPortIsAClearError) {
  TestingClusterOptions o;
  o.binary = BuiltCairnBinary();
  auto cluster = TestingCluster::Start(o);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  TestingCluster& c = **cluster;
  ASSERT_TRUE(c.Kill(0).ok());
  const std::string endpoint = c.Endpoint(0);
  const int port = std::atoi(endpoint.substr(endpoint.rfind(':') + 1).c_str());
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  // The killed member's connections may leave the port in TIME_WAIT, which refuses a plain bind
  // (EADDRINUSE, seen in CI); SO_REUSEADDR binds over those, as the member itself does, and still
  // never over a live listener.
  const int one = 1;
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
  ASSERT_EQ(::listen(fd, 1), 0);
  absl::Status taken = c.Restart(0, std::chrono::milliseconds(20000));
  ::close(fd);
  EXPECT_FALSE(taken.ok());
  EXPECT_NE(taken.message().find("log tail"), std::string::npos) << taken;
  ASSERT_TRUE(c.Restart(0).ok());
  ASSERT_TRUE(c.WaitReady().ok());
}

TEST(TestingKitTest, BadOptionsAndMissingBinaryAreClearErrors) {
  TestingClusterOptions o;
  o.binary = BuiltCairnBinary();
  o.members = 0;
  EXPECT_EQ(TestingCluster::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.members = 6;
  EXPECT_EQ(TestingCluster::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.members = 1;
  o.binary = "/nonexistent/cairn";
  auto missing = TestingCluster::Start(o);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/cairn"), std::string::npos)
      << missing.status();
  EXPECT_EQ(FindCairnBinary(BuiltCairnBinary()).value_or(""), BuiltCairnBinary());
  // A binary that exits at once: the error carries its log.
  o.binary = "/bin/false";
  auto fails = TestingCluster::Start(o);
  EXPECT_EQ(fails.status().code(), absl::StatusCode::kUnavailable) << fails.status();
}

TEST(TestingKitTest, FindsTheBinaryThroughTheEnvironmentAndPath) {
  const char* saved_env = std::getenv("CAIRN_BINARY");
  std::string saved = saved_env != nullptr ? saved_env : "";
  ::setenv("CAIRN_BINARY", BuiltCairnBinary().c_str(), 1);
  EXPECT_EQ(FindCairnBinary().value_or(""), BuiltCairnBinary());
  ::setenv("CAIRN_BINARY", "/nonexistent/cairn-from-env", 1);
  auto bad = FindCairnBinary();
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(bad.status().message().find("CAIRN_BINARY"), std::string::npos) << bad.status();
  ::unsetenv("CAIRN_BINARY");
  const char* saved_path_env = std::getenv("PATH");
  std::string saved_path = saved_path_env != nullptr ? saved_path_env : "";
  std::string dir = std::filesystem::path(BuiltCairnBinary()).parent_path().string();
  ::setenv("PATH", (dir + ":" + saved_path).c_str(), 1);
  auto found = FindCairnBinary();
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(std::filesystem::path(*found).filename(), "cairn");
  ::setenv("PATH", saved_path.c_str(), 1);
  if (saved_env != nullptr) ::setenv("CAIRN_BINARY", saved.c_str(), 1);
}

// The process that started a cluster dies without running any destructor (SIGKILL): its
// members die with it (PR_SET_PDEATHSIG), so none lingers.
TEST(TestingKitTest, MembersDieWithTheProcessThatStartedThem) {
  FaultChild kit("kit", {"kit", "--binary", BuiltCairnBinary()});
  ASSERT_TRUE(kit.started());
  auto started = kit.WaitEvent("KIT", 1, std::chrono::milliseconds(60000));
  ASSERT_TRUE(started) << kit.Describe();
  const pid_t member = static_cast<pid_t>(ToInt((*started)[1]));
  ASSERT_GT(member, 0);
  EXPECT_FALSE(ProcessGone(member));
  kit.Kill();
  EXPECT_TRUE(PollUntil([&] { return ProcessGone(member); }, std::chrono::milliseconds(20000)));
  // The crashed process could not remove its directory; this test does.
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path((*started)[2]).parent_path(), ec);
}

}  // namespace
}  // namespace cairn::recipes_test
