// The `cairn` binary's command line: --help, --version, bad flags exit 2 with a clear message.
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

}  // namespace
}  // namespace cairn::testing
