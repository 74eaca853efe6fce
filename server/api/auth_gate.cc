#include "server/api/auth_gate.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/api/gateway/json_gateway.h"
#include "server/api/tls.h"

namespace cairn::api {
namespace {

thread_local const Caller* current_caller = nullptr;

using Access = auth::AuthStore::Access;

std::string Metadata(const grpc::CallbackServerContext& ctx, const char* name) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(name);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

absl::Status CheckTxn(auth::AuthStore* auth, const std::string& user,
                      const etcdserverpb::TxnRequest& r);

absl::Status CheckOp(auth::AuthStore* auth, const std::string& user,
                     const etcdserverpb::RequestOp& op) {
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange:
      return auth->CheckRange(user, op.request_range().key(), op.request_range().range_end(),
                              Access::kRead);
    case etcdserverpb::RequestOp::kRequestPut: {
      const auto& p = op.request_put();
      if (absl::Status st = auth->CheckRange(user, p.key(), "", Access::kWrite); !st.ok()) {
        return st;
      }
      return p.prev_kv() ? auth->CheckRange(user, p.key(), "", Access::kRead) : absl::OkStatus();
    }
    case etcdserverpb::RequestOp::kRequestDeleteRange: {
      const auto& d = op.request_delete_range();
      if (absl::Status st = auth->CheckRange(user, d.key(), d.range_end(), Access::kWrite);
          !st.ok()) {
        return st;
      }
      return d.prev_kv() ? auth->CheckRange(user, d.key(), d.range_end(), Access::kRead)
                         : absl::OkStatus();
    }
    case etcdserverpb::RequestOp::kRequestTxn:
      return CheckTxn(auth, user, op.request_txn());
    default:
      return absl::OkStatus();
  }
}

absl::Status CheckTxn(auth::AuthStore* auth, const std::string& user,
                      const etcdserverpb::TxnRequest& r) {
  for (const auto& c : r.compare()) {
    if (absl::Status st = auth->CheckRange(user, c.key(), c.range_end(), Access::kRead); !st.ok()) {
      return st;
    }
  }
  for (const auto* ops : {&r.success(), &r.failure()}) {
    for (const auto& op : *ops) {
      if (absl::Status st = CheckOp(auth, user, op); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

}  // namespace

Caller CallerOf(const grpc::CallbackServerContext& ctx) {
  Caller c;
  c.token = Metadata(ctx, "token");
  if (c.token.empty()) c.token = Metadata(ctx, "authorization");
  if (std::string cn = Metadata(ctx, gateway::kGatewayCommonNameMetadata); !cn.empty()) {
    c.cert_common_name = std::move(cn);
    c.gateway_key = Metadata(ctx, gateway::kGatewayKeyMetadata);
  }
  c.context = &ctx;
  return c;
}

CallerScope::CallerScope(const Caller* caller) : previous_(current_caller) {
  current_caller = caller;
}

CallerScope::~CallerScope() { current_caller = previous_; }

const Caller& CallerScope::Current() {
  static const Caller kNobody;
  return current_caller ? *current_caller : kNobody;
}

namespace {

// etcd's AuthInfoFromCtx: the token's user and revision, else the certificate CN at the current
// revision, else nobody.
absl::StatusOr<auth::TokenClaims> ClaimsOf(auth::AuthStore* auth, const Caller& caller) {
  if (auth == nullptr || !auth->enabled()) return auth::TokenClaims{};
  if (!caller.token.empty()) return auth->ClaimsOfToken(caller.token);
  // The HTTP gateway's TLS client (vouched for by the member's internal token, so a gRPC client
  // cannot claim a name by sending the metadata itself).
  if (caller.cert_common_name && auth->IsInternalToken(caller.gateway_key)) {
    return auth::TokenClaims{*caller.cert_common_name, auth->revision()};
  }
  // As etcd with --client-cert-auth: a verified client certificate's CN is the user.
  if (caller.context != nullptr) {
    if (auto cn = AuthenticatedCommonName(*caller.context)) {
      return auth::TokenClaims{*std::move(cn), auth->revision()};
    }
  }
  return auth::TokenClaims{};
}

// The user for a key-range check. As etcd's isOpPermitted, a token minted before the last auth
// change (a JWT's revision claim) is refused: kAuthOldRevision.
absl::StatusOr<std::string> RangeUserOf(auth::AuthStore* auth, const Caller& caller) {
  auto claims = ClaimsOf(auth, caller);
  if (!claims.ok()) return claims.status();
  if (!claims->username.empty()) {
    if (absl::Status st = auth->CheckTokenRevision(claims->revision); !st.ok()) return st;
  }
  return std::move(claims->username);
}

}  // namespace

absl::StatusOr<std::string> UserOf(auth::AuthStore* auth, const Caller& caller) {
  auto claims = ClaimsOf(auth, caller);
  if (!claims.ok()) return claims.status();
  return std::move(claims->username);
}

absl::Status Authorize(auth::AuthStore* auth, const Caller& caller,
                       const etcdserverpb::RangeRequest& r) {
  auto user = RangeUserOf(auth, caller);
  if (!user.ok()) return user.status();
  if (auth == nullptr || !auth->enabled()) return absl::OkStatus();  // nothing to copy or check
  return auth->CheckRange(*user, r.key(), r.range_end(), Access::kRead);
}

// Checks the one-operation txn that `fill` writes into a RequestOp, as a txn's op is checked.
template <typename Fill>
absl::Status AuthorizeOne(auth::AuthStore* auth, const Caller& caller, Fill fill) {
  auto user = RangeUserOf(auth, caller);
  if (!user.ok()) return user.status();
  if (auth == nullptr || !auth->enabled()) return absl::OkStatus();  // nothing to copy or check
  etcdserverpb::RequestOp op;
  fill(&op);
  return CheckOp(auth, *user, op);
}

absl::Status Authorize(auth::AuthStore* auth, const Caller& caller,
                       const etcdserverpb::PutRequest& r) {
  return AuthorizeOne(auth, caller,
                      [&r](etcdserverpb::RequestOp* op) { *op->mutable_request_put() = r; });
}

absl::Status Authorize(auth::AuthStore* auth, const Caller& caller,
                       const etcdserverpb::DeleteRangeRequest& r) {
  return AuthorizeOne(
      auth, caller, [&r](etcdserverpb::RequestOp* op) { *op->mutable_request_delete_range() = r; });
}

absl::Status Authorize(auth::AuthStore* auth, const Caller& caller,
                       const etcdserverpb::TxnRequest& r) {
  auto user = RangeUserOf(auth, caller);
  if (!user.ok()) return user.status();
  if (auth == nullptr || !auth->enabled()) return absl::OkStatus();  // nothing to copy or check
  return CheckTxn(auth, *user, r);
}

absl::Status AuthorizeWatch(auth::AuthStore* auth, const Caller& caller, const std::string& key,
                            const std::string& range_end) {
  auto user = RangeUserOf(auth, caller);
  if (!user.ok()) return user.status();
  if (auth == nullptr) return absl::OkStatus();
  return auth->CheckRange(*user, key, range_end, Access::kRead);
}

absl::Status AuthorizeLeaseRevoke(auth::AuthStore* auth, const Caller& caller,
                                  const std::vector<std::string>& keys) {
  auto user = RangeUserOf(auth, caller);
  if (!user.ok()) return user.status();
  if (auth == nullptr || !auth->enabled()) return absl::OkStatus();
  for (const auto& k : keys) {
    if (absl::Status st = auth->CheckRange(*user, k, "", Access::kWrite); !st.ok()) return st;
  }
  return absl::OkStatus();
}

std::string GoErrorString(const absl::Status& status) {
  // grpc-go's codes.Code.String(), indexed by code.
  static constexpr const char* kNames[] = {
      "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated",
  };
  size_t code = static_cast<size_t>(status.code());
  std::string name = code < std::size(kNames) ? kNames[code] : "Unknown";
  return "rpc error: code = " + name + " desc = " + std::string(status.message());
}

namespace {

std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return std::string(1, '\0');
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

std::string LeaseKey(const std::string& name, int64_t lease) {
  char hex[32];
  snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(lease));
  return name + "/" + hex;
}

void AddRead(google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>* ops,
             const std::string& key, const std::string& range_end) {
  auto* r = ops->Add()->mutable_request_range();
  r->set_key(key);
  r->set_range_end(range_end);
}

// etcd's `If(CreateRevision(key) = ..)` txn whose success branch writes `key` (put or delete,
// the same write permission) and, with `prefix`, also reads it; the failure branch reads `key`.
etcdserverpb::TxnRequest KeyTxn(const std::string& key, const std::string* prefix) {
  etcdserverpb::TxnRequest t;
  t.add_compare()->set_key(key);
  t.add_success()->mutable_request_put()->set_key(key);
  if (prefix) AddRead(t.mutable_success(), *prefix, PrefixEnd(*prefix));
  AddRead(t.mutable_failure(), key, "");
  return t;
}

}  // namespace

absl::Status AuthorizeLock(auth::AuthStore* auth, const Caller& caller, const std::string& name,
                           int64_t lease) {
  std::string prefix = name + "/";
  return Authorize(auth, caller, KeyTxn(LeaseKey(name, lease), &prefix));
}

absl::Status AuthorizeCampaign(auth::AuthStore* auth, const Caller& caller, const std::string& name,
                               int64_t lease) {
  if (absl::Status st = Authorize(auth, caller, KeyTxn(LeaseKey(name, lease), nullptr)); !st.ok()) {
    return st;
  }
  return AuthorizeElectionRead(auth, caller, name);
}

absl::Status AuthorizeLeaderKey(auth::AuthStore* auth, const Caller& caller,
                                const std::string& key) {
  return Authorize(auth, caller, KeyTxn(key, nullptr));
}

absl::Status AuthorizeElectionRead(auth::AuthStore* auth, const Caller& caller,
                                   const std::string& name) {
  etcdserverpb::RangeRequest r;
  r.set_key(name + "/");
  r.set_range_end(PrefixEnd(name + "/"));
  return Authorize(auth, caller, r);
}

absl::Status AuthorizeAdmin(auth::AuthStore* auth, const Caller& caller) {
  auto user = UserOf(auth, caller);
  if (!user.ok()) return user.status();
  if (auth == nullptr) return absl::OkStatus();
  return auth->CheckAdmin(*user);
}

absl::Status AuthorizeMaintenance(auth::AuthStore* auth, const Caller& caller) {
  absl::Status st = AuthorizeAdmin(auth, caller);
  if (st.ok()) return st;
  constexpr absl::string_view kPrefix = "etcdserver: ";
  absl::string_view message = st.message();
  if (absl::StartsWith(message, kPrefix)) message.remove_prefix(kPrefix.size());
  return absl::UnknownError(absl::StrCat("auth: ", message));
}

}  // namespace cairn::api
