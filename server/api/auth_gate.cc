#include "server/api/auth_gate.h"

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

absl::StatusOr<std::string> UserOf(auth::AuthStore* auth, const Caller& caller) {
  if (auth == nullptr || !auth->enabled()) return std::string();
  if (!caller.token.empty()) return auth->UserOfToken(caller.token);
  if (caller.cert_common_name) return *caller.cert_common_name;
  // As etcd with --client-cert-auth: a verified client certificate's CN is the user.
  if (caller.context != nullptr) {
    if (auto cn = AuthenticatedCommonName(*caller.context)) return *cn;
  }
  return std::string();
}

absl::Status Authorize(auth::AuthStore* auth, const Caller& caller,
                       const etcdserverpb::RangeRequest& r) {
  auto user = UserOf(auth, caller);
  if (!user.ok()) return user.status();
  if (auth == nullptr || !auth->enabled()) return absl::OkStatus();  // nothing to copy or check
  return auth->CheckRange(*user, r.key(), r.range_end(), Access::kRead);
}

// Checks the one-operation txn that `fill` writes into a RequestOp, as a txn's op is checked.
template <typename Fill>
absl::Status AuthorizeOne(auth::AuthStore* auth, const Caller& caller, Fill fill) {
  auto user = UserOf(auth, caller);
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
  auto user = UserOf(auth, caller);
  if (!user.ok()) return user.status();
  if (auth == nullptr || !auth->enabled()) return absl::OkStatus();  // nothing to copy or check
  return CheckTxn(auth, *user, r);
}

absl::Status AuthorizeWatch(auth::AuthStore* auth, const Caller& caller, const std::string& key,
                            const std::string& range_end) {
  auto user = UserOf(auth, caller);
  if (!user.ok()) return user.status();
  if (auth == nullptr) return absl::OkStatus();
  return auth->CheckRange(*user, key, range_end, Access::kRead);
}

absl::Status AuthorizeLeaseRevoke(auth::AuthStore* auth, const Caller& caller,
                                  const std::vector<std::string>& keys) {
  auto user = UserOf(auth, caller);
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

absl::Status AuthorizeAdmin(auth::AuthStore* auth, const Caller& caller) {
  auto user = UserOf(auth, caller);
  if (!user.ok()) return user.status();
  if (auth == nullptr) return absl::OkStatus();
  return auth->CheckAdmin(*user);
}

}  // namespace cairn::api
