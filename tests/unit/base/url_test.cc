#include "server/base/url.h"

#include <string>

#include "gtest/gtest.h"

namespace cairn::base {
namespace {

TEST(UrlTest, ParsesSchemeHostPortAndPath) {
  absl::StatusOr<Url> u = ParseUrl("http://127.0.0.1:2379");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 2379);
  EXPECT_EQ(u->path, "");
  EXPECT_EQ(u->HostPort(), "127.0.0.1:2379");

  u = ParseUrl("http://localhost:0/x/y");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "localhost");
  EXPECT_EQ(u->port, 0);
  EXPECT_EQ(u->path, "/x/y");
}

TEST(UrlTest, KeepsTheBracketsOfAnIpv6Literal) {
  absl::StatusOr<Url> u = ParseUrl("http://[::1]:2380");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "[::1]");
  EXPECT_EQ(u->port, 2380);
  EXPECT_EQ(u->HostPort(), "[::1]:2380");
}

TEST(UrlTest, RefusesOtherSchemesAndMissingOrBadParts) {
  for (const char* bad : {
           "ftp://h:1",        // not http or https
           "unix:///tmp/s",    // not a host:port
           "h:1",              // no scheme
           "http://",          // nothing
           "http://h",         // no port
           "http://h:",        // empty port
           "http://:1",        // no host
           "http://h:1x",      // not digits
           "http://h:-1",      // not digits
           "http://h:65536",   // out of range
           "http://h:123456",  // too many digits
           "http://h:99999999999999999999",
       }) {
    absl::StatusOr<Url> u = ParseUrl(bad);
    EXPECT_FALSE(u.ok()) << bad;
    EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(u.status().message().find(bad), std::string_view::npos) << u.status();
  }
  EXPECT_TRUE(ParseUrl("http://h:65535").ok());
}

TEST(UrlTest, HostPortAllowsOnlyTrailingSlashes) {
  EXPECT_EQ(HostPortOfUrl("http://h:1").value(), "h:1");
  EXPECT_EQ(HostPortOfUrl("http://h:1/").value(), "h:1");
  EXPECT_EQ(HostPortOfUrl("http://h:1//").value(), "h:1");
  EXPECT_FALSE(HostPortOfUrl("http://h:1/v3").ok());
  EXPECT_EQ(HostPortOfUrl("https://h:1").value(), "h:1");  // TLS (docs/security.md)
  EXPECT_EQ(ParseUrl("https://h:1").value().scheme, "https");
}

}  // namespace
}  // namespace cairn::base
