#include "server/api/gate.h"

#include "server/base/errors.h"

namespace cairn::api {

std::string_view MethodName(Method method) {
  static constexpr std::string_view kNames[] = {
      "Range",           "Put",          "DeleteRange",  "Txn",
      "Compact",         "LeaseGrant",   "LeaseRevoke",  "LeaseKeepAlive",
      "LeaseTimeToLive", "LeaseLeases",  "Watch",        "MemberList",
      "MemberAdd",       "MemberRemove", "MemberUpdate", "MemberPromote",
      "Status",          "MoveLeader",   "Lock",         "Unlock",
      "Campaign",        "Proclaim",     "Leader",       "Observe",
      "Resign",          "Alarm",        "Defragment",   "Hash",
      "HashKV",          "Snapshot",
  };
  // The Auth service's methods, which follow kSnapshot (server/api/auth_service.h).
  static constexpr std::string_view kAuthNames[] = {
      "AuthEnable",
      "AuthDisable",
      "AuthStatus",
      "Authenticate",
      "UserAdd",
      "UserGet",
      "UserList",
      "UserDelete",
      "UserChangePassword",
      "UserGrantRole",
      "UserRevokeRole",
      "RoleAdd",
      "RoleGet",
      "RoleList",
      "RoleDelete",
      "RoleGrantPermission",
      "RoleRevokePermission",
  };
  static_assert(std::size(kNames) == static_cast<size_t>(Method::kAuthEnable));
  static_assert(std::size(kNames) + std::size(kAuthNames) == static_cast<size_t>(Method::kCount));
  size_t i = static_cast<size_t>(method);
  return i < std::size(kNames) ? kNames[i] : kAuthNames[i - std::size(kNames)];
}

namespace {
// etcd's applierV3Corrupt answers ErrCorrupt for Put, DeleteRange, Txn, Compaction, LeaseGrant and
// LeaseRevoke. Its Range and a read-only Txn are served by the base applier (v3_server.go), so
// reads still work on a corrupt cluster.
bool RefusedWhenCorrupt(Method method, bool writes) {
  switch (method) {
    case Method::kPut:
    case Method::kDeleteRange:
    case Method::kCompact:
    case Method::kLeaseGrant:
    case Method::kLeaseRevoke:
      return true;
    case Method::kTxn:
      return writes;
    default:
      return false;
  }
}
}  // namespace

bool RequestGate::Admit(Method method, Done* done, bool writes) {
  Counters& c = counters_[static_cast<size_t>(method)];
  if (closed_.load()) {
    Refuse(c, done, base::MakeError(base::ErrorKind::kStopped));
    return false;
  }
  const bool grows =
      method == Method::kPut || method == Method::kLeaseGrant || (method == Method::kTxn && writes);
  if (grows && space_exceeded_ && space_exceeded_()) {
    Refuse(c, done, base::MakeError(base::ErrorKind::kNoSpace));
    return false;
  }
  if (corrupt_ && RefusedWhenCorrupt(method, writes) && corrupt_()) {
    Refuse(c, done, base::MakeError(base::ErrorKind::kCorrupt));
    return false;
  }
  c.admitted.fetch_add(1, std::memory_order_relaxed);
  *done = [this, method, inner = std::move(*done)](absl::Status status) {
    Finish(method, status);
    inner(std::move(status));
  };
  return true;
}

void RequestGate::Refuse(Counters& c, Done* done, absl::Status error) {
  c.refused.fetch_add(1, std::memory_order_relaxed);
  size_t code = static_cast<size_t>(error.code());
  c.refused_codes[code < kCodes ? code : static_cast<size_t>(absl::StatusCode::kUnknown)].fetch_add(
      1, std::memory_order_relaxed);
  (*done)(std::move(error));
}

absl::Status RequestGate::AdmitStream(Method method) {
  absl::Status refused;
  Done done = [&refused](absl::Status st) { refused = std::move(st); };
  if (!Admit(method, &done)) return refused;
  return absl::OkStatus();  // `done` (now counting) is dropped: StreamDone counts the end
}

void RequestGate::Finish(Method method, const absl::Status& status) {
  Counters& c = counters_[static_cast<size_t>(method)];
  if (!status.ok()) {
    size_t code = static_cast<size_t>(status.code());
    c.failed[code < kCodes ? code : static_cast<size_t>(absl::StatusCode::kUnknown)].fetch_add(
        1, std::memory_order_relaxed);
  }
  c.finished.fetch_add(1, std::memory_order_relaxed);
}

RequestGate::MethodStats RequestGate::Stats(Method method) const {
  const Counters& c = counters_[static_cast<size_t>(method)];
  MethodStats s;
  s.admitted = c.admitted.load(std::memory_order_relaxed);
  s.finished = c.finished.load(std::memory_order_relaxed);
  s.refused = c.refused.load(std::memory_order_relaxed);
  for (size_t code = 0; code < kCodes; ++code) {
    uint64_t n = c.failed[code].load(std::memory_order_relaxed);
    if (n > 0) s.failed[static_cast<absl::StatusCode>(code)] = n;
    uint64_t r = c.refused_codes[code].load(std::memory_order_relaxed);
    if (r > 0) s.refused_by_code[static_cast<absl::StatusCode>(code)] = r;
  }
  return s;
}

}  // namespace cairn::api
