#include "server/base/url.h"

#include <string>

namespace cairn::base {
namespace {

constexpr std::string_view kHttp = "http://";
constexpr std::string_view kHttps = "https://";  // TLS (docs/security.md)

absl::Status BadUrl(std::string_view url, std::string_view why) {
  return absl::InvalidArgumentError("URL \"" + std::string(url) + "\" " + std::string(why));
}

}  // namespace

std::string Url::HostPort() const { return host + ":" + std::to_string(port); }

absl::StatusOr<Url> ParseUrl(std::string_view url) {
  const bool https = url.starts_with(kHttps);
  if (!url.starts_with(kHttp) && !https) {
    return absl::InvalidArgumentError("unsupported URL scheme in \"" + std::string(url) +
                                      "\" (expected http://host:port)");
  }
  std::string_view rest = url.substr(https ? kHttps.size() : kHttp.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  // rfind: an IPv6 literal ("[::1]:2379") has colons of its own before the port's.
  size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == authority.size()) {
    return BadUrl(url, "needs a host and a port");
  }
  std::string_view port = authority.substr(colon + 1);
  uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return BadUrl(url, "has a bad port");
  }
  // At most 5 digits, so the value cannot overflow before the range check.
  if (port.size() > 5) return BadUrl(url, "has a bad port");
  for (char c : port) value = value * 10 + static_cast<uint32_t>(c - '0');
  if (value > 65535) return BadUrl(url, "has a bad port");
  Url out;
  out.scheme = https ? "https" : "http";
  out.host = std::string(authority.substr(0, colon));
  out.port = static_cast<uint16_t>(value);
  if (slash != std::string_view::npos) out.path = std::string(rest.substr(slash));
  return out;
}

absl::StatusOr<std::string> HostPortOfUrl(std::string_view url) {
  absl::StatusOr<Url> parsed = ParseUrl(url);
  if (!parsed.ok()) return parsed.status();
  if (parsed->path.find_first_not_of('/') != std::string::npos) {
    return BadUrl(url, "has a path (expected http://host:port)");
  }
  return parsed->HostPort();
}

}  // namespace cairn::base
