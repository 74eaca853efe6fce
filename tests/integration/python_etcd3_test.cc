// python-etcd3 0.12 (Debian's python3-etcd3, importable by /usr/bin/python3 only) against a fresh
// etcd and a fresh cairn: the scenarios live in python_etcd3_scenarios.py.
#include <string>

#include "gtest/gtest.h"
#include "tests/harness/server_process.h"

#ifndef CAIRN_PYTHON_SCENARIOS
#error "CAIRN_PYTHON_SCENARIOS must name python_etcd3_scenarios.py"
#endif

namespace cairn::testing {
namespace {

class PythonEtcd3Test : public ::testing::TestWithParam<ServerKind> {};

TEST_P(PythonEtcd3Test, KvScenarios) {
  auto cluster = ServerCluster::Start({.kind = GetParam()});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  CommandResult r = RunCommand(
      {"/usr/bin/python3", CAIRN_PYTHON_SCENARIOS, (*cluster)->ClientEndpoint(0)}, "", 120000);
  EXPECT_EQ(r.exit_code, 0) << "stdout:\n" << r.out << "\nstderr:\n" << r.err;
}

INSTANTIATE_TEST_SUITE_P(Integration, PythonEtcd3Test, ::testing::ValuesIn(TestedServerKinds()),
                         [](const ::testing::TestParamInfo<ServerKind>& info) {
                           return ServerKindName(info.param);
                         });

}  // namespace
}  // namespace cairn::testing
