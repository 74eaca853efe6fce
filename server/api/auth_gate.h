// Auth in the request gate (docs/auth.md): who is calling, and may they do this.
//
// The transport extracts a Caller from each request: the token (gRPC metadata `token`, or
// `authorization` as etcd's gateway sends it; the HTTP gateway forwards its `Authorization`
// header here) and, with --client-cert-auth, the TLS client certificate's CN (filled by the TLS
// layer; etcd uses the CN only when no token is sent). Unary calls run their handler inside a
// CallerScope (set by Serve in reactors.h), so the transport-neutral handlers need no extra
// parameter; streams keep their Caller and pass it explicitly.
//
// The checks are etcd 3.4's (v3_server.go, apply_auth.go): Range read; Put write (+read with
// prev_kv); DeleteRange write (+read with prev_kv); Txn read on every compare, each op as above,
// nested txns too; Watch read at create; LeaseRevoke write on every attached key; Compaction,
// MoveLeader, member changes and Auth administration root only. All pass when auth is disabled.
// Errors: "invalid auth token" (a token that names nobody), "user name is empty" (no identity),
// "permission denied", "user name not found" (admin calls of a deleted user), and for key-range
// checks only "revision of auth store is old" (a JWT minted before the last auth change, etcd's
// isOpPermitted; simple tokens and certificate users are always at the current revision).
//
// Thread safety: thread-safe (CallerScope is per thread).
#pragma once

#include <optional>
#include <string>

#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/auth/auth_store.h"
#include "server/mvcc/kv_store.h"

namespace cairn::api {

struct Caller {
  std::string token;  // "" when none was sent
  // The verified client certificate's CN that the HTTP gateway (which terminates TLS itself)
  // sent with the call, honoured only with `gateway_key` equal to the member's internal token.
  std::optional<std::string> cert_common_name;
  std::string gateway_key;
  // The call, whose verified client certificate CN (AuthenticatedCommonName, tls.h) is the user
  // when no token is sent and auth is enabled; looked up only then. Outlives the Caller's use.
  const grpc::ServerContextBase* context = nullptr;
};

// The Caller of a gRPC call: its `token` (or `authorization`) metadata, and the gateway's CN
// metadata (gateway::kGatewayCommonNameMetadata) with its key, checked in UserOf.
Caller CallerOf(const grpc::CallbackServerContext& ctx);

// Makes `caller` the current thread's caller while it lives (nests; restores the previous one).
class CallerScope {
 public:
  explicit CallerScope(const Caller* caller);
  ~CallerScope();
  CallerScope(const CallerScope&) = delete;
  CallerScope& operator=(const CallerScope&) = delete;
  // The caller of the innermost live scope; an empty Caller when there is none.
  static const Caller& Current();

 private:
  const Caller* previous_;
};

// The user the caller is: "" when it sent no identity or auth is disabled. kInvalidAuthToken.
absl::StatusOr<std::string> UserOf(auth::AuthStore* auth, const Caller& caller);

absl::Status Authorize(auth::AuthStore* auth, const Caller& caller,
                       const etcdserverpb::RangeRequest& r);
absl::Status Authorize(auth::AuthStore* auth, const Caller& caller,
                       const etcdserverpb::PutRequest& r);
absl::Status Authorize(auth::AuthStore* auth, const Caller& caller,
                       const etcdserverpb::DeleteRangeRequest& r);
absl::Status Authorize(auth::AuthStore* auth, const Caller& caller,
                       const etcdserverpb::TxnRequest& r);
// A watch over [key, range_end).
absl::Status AuthorizeWatch(auth::AuthStore* auth, const Caller& caller, const std::string& key,
                            const std::string& range_end);
// LeaseRevoke: write on each of `keys` (the lease's attached keys).
absl::Status AuthorizeLeaseRevoke(auth::AuthStore* auth, const Caller& caller,
                                  const std::vector<std::string>& keys);
// How etcd 3.4 words an auth refusal in a watch's cancel_reason: the Go gRPC error's string,
// "rpc error: code = PermissionDenied desc = etcdserver: permission denied".
std::string GoErrorString(const absl::Status& status);

// Root only.
absl::Status AuthorizeAdmin(auth::AuthStore* auth, const Caller& caller);
// Root only, answered as etcd 3.4's maintenance server answers Defragment, Hash, HashKV and
// Snapshot: the auth package's own error, which gRPC sends as Unknown "auth: permission denied"
// ("auth: user name is empty" without a token, "auth: invalid auth token" for a bad one).
absl::Status AuthorizeMaintenance(auth::AuthStore* auth, const Caller& caller);

// v3lock and v3election. etcd runs them as their caller over KV (an embedded client carrying the
// caller's token), so the caller needs the key permissions of the recipe's requests; these check
// the requests etcd's concurrency package sends first, as a Txn or Range would be checked. The
// recipe then runs with the member's internal identity (AuthStore::internal_token).
// Lock: the txn on "<name>/<lease hex>" (read + write) that also reads the prefix "<name>/".
absl::Status AuthorizeLock(auth::AuthStore* auth, const Caller& caller, const std::string& name,
                           int64_t lease);
// Campaign: the txn on "<name>/<lease hex>" (read + write), then the read of "<name>/".
absl::Status AuthorizeCampaign(auth::AuthStore* auth, const Caller& caller, const std::string& name,
                               int64_t lease);
// Proclaim and Resign: the txn that compares and writes (put or delete) the leader's key.
absl::Status AuthorizeLeaderKey(auth::AuthStore* auth, const Caller& caller,
                                const std::string& key);
// Leader and Observe: the read of the prefix "<name>/".
absl::Status AuthorizeElectionRead(auth::AuthStore* auth, const Caller& caller,
                                   const std::string& name);

}  // namespace cairn::api
