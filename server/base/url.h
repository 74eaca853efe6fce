// URLs of a member's listeners and peers: "http://host:port", as given to --listen-client-urls,
// --listen-peer-urls, --advertise-client-urls, --initial-advertise-peer-urls, --initial-cluster
// and MemberAdd / MemberUpdate. One parser for all of them, so every place accepts and refuses the
// same strings. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cairn::base {

struct Url {
  std::string scheme;  // "http" or "https" (TLS: docs/security.md)
  std::string host;    // non-empty; an IPv6 literal keeps its brackets ("[::1]")
  uint16_t port = 0;   // 0 asks a listener to pick a free port
  std::string path;    // whatever follows host:port: empty or starting with '/'

  // "host:port", the form gRPC listens on and dials.
  std::string HostPort() const;
};

// Parses "http[s]://host:port[/path]". Errors (kInvalidArgument, naming the URL): another scheme,
// no host, no port, a port that is not 1 to 5 digits or is above 65535.
absl::StatusOr<Url> ParseUrl(std::string_view url);

// The "host:port" of a listen or peer URL: ParseUrl's rules, and nothing but slashes may follow
// the port ("http://host:port/" is accepted, "http://host:port/x" is not).
absl::StatusOr<std::string> HostPortOfUrl(std::string_view url);

}  // namespace cairn::base
