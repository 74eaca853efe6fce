// Options of the Cairn client: how to connect (ClientOptions) and how to run one call
// (CallOptions). Plain value types; copy freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/future.h"

namespace cairn {

// TLS settings. Files are PEM. Leave ca_file empty to use the system roots. Set cert_file and
// key_file for mutual TLS. The *_pem fields, when non-empty, take precedence over the files.
struct TlsOptions {
  bool enabled = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  // Overrides the host name checked against the server certificate (all endpoints).
  std::string server_name_override;
};

// Which calls may be retried (docs/client.md "Retry policy").
enum class RetryMode {
  kDefault,     // by RPC class: reads/idempotent calls retry on UNAVAILABLE; writes only when
                // the request surely never reached a server
  kIdempotent,  // the caller declares this write idempotent: retry like a read
  kNever,       // one attempt only (token refresh still retries once: the call was rejected)
};

struct CallOptions {
  // The call's total budget across retries; zero means ClientOptions::default_timeout.
  std::chrono::milliseconds timeout{0};
  // Absolute deadline; the earlier of this and `timeout` wins.
  Clock::time_point deadline = Clock::time_point::max();
  // Canceling the token cancels the call (result: CANCELLED).
  CancelToken cancel;
  RetryMode retry = RetryMode::kDefault;
  // Fails the call with "etcdserver: no leader" when the member has no leader (etcd's
  // WithRequireLeader); reads then fail over to another member.
  bool require_leader = false;
};

struct ClientOptions {
  // "host:port", "http://host:port" or "https://host:port" (https implies TLS).
  std::vector<std::string> endpoints;
  // Time to wait for a connection to an endpoint before trying the next.
  std::chrono::milliseconds dial_timeout{5000};
  // Connect() waits until some endpoint is reachable (up to dial_timeout) when true.
  bool wait_for_connection = true;
  // HTTP/2 keepalive pings; zero disables.
  std::chrono::milliseconds keepalive_time{30000};
  std::chrono::milliseconds keepalive_timeout{10000};
  bool keepalive_without_stream = false;
  // Deadline of calls that do not set one.
  std::chrono::milliseconds default_timeout{10000};
  // Message size limits (bytes); 0 = gRPC default (send: unlimited, receive: 4 MiB is raised to
  // unlimited by the client as etcd's Go client does).
  int max_send_message_bytes = 2 * 1024 * 1024;
  int max_receive_message_bytes = 0;
  // Auth: when username is set the client authenticates at Connect() and refreshes the token
  // whenever a server reports it invalid (for unary calls and streams alike).
  std::string username;
  std::string password;
  // All keys are transparently prefixed with `key_prefix` and stripped from results
  // (etcd's namespace package). Empty = no prefix.
  std::string key_prefix;
  TlsOptions tls;
  // When > 0 the endpoint list is refreshed from MemberList every interval.
  std::chrono::milliseconds auto_sync_interval{0};
  // Retry backoff: exponential from base to max, with +-jitter_fraction jitter.
  std::chrono::milliseconds backoff_base{25};
  std::chrono::milliseconds backoff_max{1000};
  double backoff_jitter_fraction = 0.2;
};

}  // namespace cairn
