// Tests of the harness itself, against etcd (always present) so the harness is proven before the
// tests built on it are trusted.
#include "tests/harness/server_process.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace cairn::testing {
namespace {

TEST(HarnessRunCommandTest, CollectsOutputAndExitCode) {
  CommandResult r = RunCommand({"sh", "-c", "cat; echo err >&2; exit 3"}, "hello\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(HarnessRunCommandTest, LargeStdinAndStdout) {
  std::string big(1 << 20, 'x');
  CommandResult r = RunCommand({"cat"}, big);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, big);
}

TEST(HarnessRunCommandTest, TimeoutKillsChild) {
  CommandResult r = RunCommand({"sleep", "30"}, "", 200);
  EXPECT_EQ(r.exit_code, -1);
}

TEST(HarnessRunCommandTest, MissingProgram) {
  CommandResult r = RunCommand({"/nonexistent/program"});
  EXPECT_EQ(r.exit_code, 127);
}

TEST(HarnessServerKindTest, Names) {
  EXPECT_EQ(ServerKindName(ServerKind::kEtcd), "etcd");
  EXPECT_EQ(ServerKindName(ServerKind::kCairn), "cairn");
  EXPECT_TRUE(ServerAvailable(ServerKind::kEtcd));
  if (CairnBuilt()) {
    EXPECT_TRUE(ServerAvailable(ServerKind::kCairn)) << ServerBinary(ServerKind::kCairn);
  }
}

TEST(HarnessServerClusterTest, SingleEtcdKillRestartPause) {
  auto cluster = ServerCluster::Start({.kind = ServerKind::kEtcd});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  ASSERT_EQ(c.size(), 1);
  std::string root = std::filesystem::path(c.DataDir(0)).parent_path();
  EXPECT_TRUE(std::filesystem::exists(c.DataDir(0)));

  CommandResult put = RunCommand({EtcdctlPath(), "--endpoints", c.ClientUrls(), "put", "k", "v"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_EQ(put.out, "OK\n");

  pid_t old_pid = c.Pid(0);
  c.Kill(0);
  EXPECT_EQ(c.Pid(0), -1);
  ASSERT_TRUE(c.Restart(0).ok());
  EXPECT_NE(c.Pid(0), old_pid);
  CommandResult get = RunCommand({EtcdctlPath(), "--endpoints", c.ClientUrls(), "get", "k"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out, "k\nv\n");

  c.Pause(0);
  CommandResult paused = RunCommand(
      {EtcdctlPath(), "--endpoints", c.ClientUrls(), "--command-timeout=300ms", "get", "k"});
  EXPECT_NE(paused.exit_code, 0);
  c.Resume(0);
  EXPECT_TRUE(c.WaitReady(0).ok());

  cluster->reset();
  EXPECT_FALSE(std::filesystem::exists(root));
}

TEST(HarnessServerClusterTest, ThreeMemberEtcd) {
  auto cluster = ServerCluster::Start({.kind = ServerKind::kEtcd, .members = 3});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  ASSERT_EQ(c.ClientEndpoints().size(), 3u);
  CommandResult put = RunCommand({EtcdctlPath(), "--endpoints", c.ClientUrls(), "put", "a", "1"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  // A write through member 0 is visible through every member (linearizable reads).
  for (int i = 0; i < 3; ++i) {
    auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(c.ClientEndpoint(i)));
    etcdserverpb::RangeRequest req;
    req.set_key("a");
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ASSERT_TRUE(stub->Range(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.kvs_size(), 1);
    EXPECT_EQ(resp.kvs(0).value(), "1");
  }
  // One member down: the other two keep a quorum. If it was the leader, a write in flight during
  // the election may time out (etcd does not retry a proposal lost with its leader): retry,
  // bounded.
  c.Kill(2);
  CommandResult put2;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    put2 = RunCommand({EtcdctlPath(), "--endpoints", c.ClientEndpoint(0), "--command-timeout=3s",
                       "put", "b", "2"});
  } while (put2.exit_code != 0 && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(put2.exit_code, 0) << put2.err;
  ASSERT_TRUE(c.Restart(2).ok());
}

TEST(HarnessServerClusterTest, BadFlagFailsWithLogTail) {
  auto cluster =
      ServerCluster::Start({.kind = ServerKind::kEtcd, .extra_args = {"--no-such-flag"}});
  ASSERT_FALSE(cluster.ok());
  EXPECT_NE(cluster.status().message().find("no-such-flag"), std::string::npos) << cluster.status();
}

}  // namespace
}  // namespace cairn::testing
