// Operator output: the text and JSON log formats (JSON with etcd's zap fields), and the flags that
// choose them name themselves when wrong.
#include "server/base/logging.h"

#include "gtest/gtest.h"
#include "server/main/flags.h"

namespace cairn::base {
namespace {

TEST(LogFormatTest, TextIsKeyValue) {
  EXPECT_EQ(FormatLogRecord(LogFormat::kText, LogLevel::kInfo, "2026-01-02T03:04:05.000006Z",
                            "main", "main/main.cc:82", "ready to serve client requests"),
            "time=2026-01-02T03:04:05.000006Z level=info component=main "
            "msg=ready to serve client requests");
}

TEST(LogFormatTest, JsonHasZapFieldsAndEscapes) {
  EXPECT_EQ(FormatLogRecord(LogFormat::kJson, LogLevel::kWarn, "2026-01-02T03:04:05.000006Z",
                            "mvcc", "mvcc/kv_store.cc:9", "a \"quoted\"\\path\nnext\x01"),
            "{\"level\":\"warn\",\"ts\":\"2026-01-02T03:04:05.000006Z\","
            "\"caller\":\"mvcc/kv_store.cc:9\",\"component\":\"mvcc\","
            "\"msg\":\"a \\\"quoted\\\"\\\\path\\nnext\\u0001\"}");
}

TEST(LogFormatTest, ParsesFormatNames) {
  LogFormat f;
  ASSERT_TRUE(ParseLogFormat("json", &f));
  EXPECT_EQ(f, LogFormat::kJson);
  ASSERT_TRUE(ParseLogFormat("text", &f));
  EXPECT_EQ(f, LogFormat::kText);
  EXPECT_FALSE(ParseLogFormat("xml", &f));
}

TEST(LogFlagsTest, DefaultsAreInfoTextAndBadValuesNameTheFlag) {
  auto flags = main::ParseFlags({});
  ASSERT_TRUE(flags.ok());
  EXPECT_EQ(flags->log_level, "info");  // etcd's default: the start and stop lines print
  EXPECT_EQ(flags->log_format, "text");
  auto json = main::ParseFlags({"--log-format", "json"});
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->log_format, "json");
  auto bad = main::ParseFlags({"--log-format=xml"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "invalid value \"xml\" for flag --log-format");
}

}  // namespace
}  // namespace cairn::base
