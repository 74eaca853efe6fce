// The `cairn` binary's command line: --help, --version, bad flags exit 2 with a clear message.
#include <filesystem>

#include "gtest/gtest.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

TEST(CairnCliTest, HelpVersionAndBadFlags) {
  ASSERT_TRUE(CairnBuilt());
  std::string bin = ServerBinary(ServerKind::kCairn);
  CommandResult help = RunCommand({bin, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--listen-client-urls"), std::string::npos);
  CommandResult version = RunCommand({bin, "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.out.find("cairn Version:"), std::string::npos);
  CommandResult bad = RunCommand({bin, "--bogus"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown flag: --bogus"), std::string::npos) << bad.err;
  CommandResult malformed = RunCommand({bin, "--max-txn-ops=lots"});
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_NE(malformed.err.find("invalid value \"lots\" for flag --max-txn-ops"), std::string::npos)
      << malformed.err;
}

// A second member can take neither the client port nor the data dir of a running one.
TEST(CairnCliTest, SecondMemberOnSamePortOrDataDirFailsToStart) {
  auto cluster = ServerCluster::Start(ClusterOptions{ServerKind::kCairn});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  std::string bin = ServerBinary(ServerKind::kCairn);
  char tmpl[] = "/tmp/cairn-cli-XXXXXX";
  std::string other_dir = mkdtemp(tmpl);
  CommandResult same_port = RunCommand({bin, "--data-dir", other_dir + "/d", "--listen-client-urls",
                                        "http://" + (*cluster)->ClientEndpoint(0)});
  EXPECT_EQ(same_port.exit_code, 1) << same_port.err;
  CommandResult same_dir = RunCommand(
      {bin, "--data-dir", (*cluster)->DataDir(0), "--listen-client-urls", "http://127.0.0.1:0"});
  EXPECT_EQ(same_dir.exit_code, 1) << same_dir.err;
  std::filesystem::remove_all(other_dir);
}

}  // namespace
}  // namespace cairn::testing
