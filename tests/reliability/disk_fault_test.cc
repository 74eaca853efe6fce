// Disk faults, fail-stop (issue 16 item 3; docs/failpoints.md): a real `cairn` member whose
// fsync or write starts failing (CAIRN_FAILPOINTS) stops with a clear message instead of limping
// on, and every write it acknowledged before is still there after a restart on a healthy disk.
#include <cstdlib>
#include <map>
#include <ostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

constexpr int kMaxPuts = 2000;

struct Case {
  const char* name;
  const char* failpoints;
  const char* log_says;  // what the member's last words must name
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class DiskFaultTest : public ::testing::TestWithParam<Case> {};

TEST_P(DiskFaultTest, MemberStopsAndKeepsEveryAcknowledgedWrite) {
  const Case& c = GetParam();
  // The member inherits the variable at spawn; later restarts (after unsetenv) get a good disk.
  ASSERT_EQ(::setenv("CAIRN_FAILPOINTS", c.failpoints, 1), 0);
  auto cluster = ServerCluster::Start({.kind = ServerKind::kCairn, .members = 1});
  ::unsetenv("CAIRN_FAILPOINTS");
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& servers = **cluster;

  auto stub = etcdserverpb::KV::NewStub(MakeTestChannel(servers.ClientEndpoint(0)));
  std::map<std::string, std::string> acked;
  bool failed = false;
  for (int i = 0; i < kMaxPuts && !failed; ++i) {
    etcdserverpb::PutRequest req;
    req.set_key(absl::StrCat("disk/", i));
    req.set_value(absl::StrCat("v", i));
    etcdserverpb::PutResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (stub->Put(&ctx, req, &resp).ok()) {
      acked[req.key()] = req.value();
    } else {
      failed = true;
    }
  }
  ASSERT_TRUE(failed) << "no put failed after " << kMaxPuts << " with " << c.failpoints;
  // Fail-stop: the process ends by itself, with the reason in its log.
  absl::StatusOr<int> exit_code = servers.WaitExit(0, 30000);
  ASSERT_TRUE(exit_code.ok()) << exit_code.status() << "\n" << servers.LogTail(0);
  EXPECT_NE(*exit_code, 0);
  const std::string log = servers.LogTail(0, 20000);
  EXPECT_NE(log.find("injected by CAIRN_FAILPOINTS"), std::string::npos) << log;
  EXPECT_NE(log.find(c.log_says), std::string::npos) << log;

  ASSERT_TRUE(servers.Restart(0).ok()) << servers.LogTail(0);
  etcdserverpb::RangeRequest range;
  range.set_key("disk/");
  range.set_range_end("disk0");
  etcdserverpb::RangeResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(stub->Range(&ctx, range, &resp).ok());
  std::map<std::string, std::string> stored;
  for (const auto& kv : resp.kvs()) stored[kv.key()] = kv.value();
  for (const auto& [key, value] : acked) {
    auto it = stored.find(key);
    ASSERT_NE(it, stored.end()) << "acknowledged " << key << " lost";
    EXPECT_EQ(it->second, value);
  }
  // At most the one unacknowledged put may have landed.
  EXPECT_LE(stored.size(), acked.size() + 1);
}

INSTANTIATE_TEST_SUITE_P(
    Failpoints, DiskFaultTest,
    ::testing::Values(Case{"WalFsyncEio", "fsync=error@after:40", "wal: fsync"},
                      Case{"WalWriteEnospc", "write=enospc@after:40", "No space left"},
                      Case{"BackendWrite", "backend_write=error@after:60", "rocksdb write failed"}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cairn::testing
