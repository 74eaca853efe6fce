// End-to-end scenarios for watch, lease, lock and elect, driven by the reference clients
// (etcdctl and python3-etcd3), run the same way against etcd and against cairn.
#include "gtest/gtest.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

class E2eTest : public ::testing::TestWithParam<ServerKind> {
 protected:
  void SetUp() override {
    auto c = ServerCluster::Start(ClusterOptions{GetParam()});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = std::move(*c);
  }
  std::unique_ptr<ServerCluster> cluster_;
};

TEST_P(E2eTest, EtcdctlWatchLeaseLockElect) {
  CommandResult r = RunCommand({"/usr/bin/python3", CAIRN_E2E_DIR "/etcdctl_watch_lease_lock.py",
                                EtcdctlPath(), cluster_->ClientEndpoint(0)},
                               "", 180000);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_P(E2eTest, PythonEtcd3WatchLeaseLock) {
  std::string ep = cluster_->ClientEndpoint(0);
  size_t colon = ep.rfind(':');
  CommandResult r = RunCommand({"/usr/bin/python3", CAIRN_E2E_DIR "/python_etcd3_watch_lease.py",
                                ep.substr(0, colon), ep.substr(colon + 1)},
                               "", 120000);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

INSTANTIATE_TEST_SUITE_P(Servers, E2eTest, ::testing::ValuesIn(TestedServerKinds()),
                         [](const auto& info) { return ServerKindName(info.param); });

}  // namespace
}  // namespace cairn::testing
