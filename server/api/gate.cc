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
      "Resign",
  };
  static_assert(std::size(kNames) == static_cast<size_t>(Method::kCount));
  return kNames[static_cast<size_t>(method)];
}

bool RequestGate::Admit(Method method, Done* done) {
  const size_t i = static_cast<size_t>(method);
  if (closed_.load()) {
    {
      absl::MutexLock l(&mu_);
      ++stats_[i].refused;
    }
    (*done)(base::MakeError(base::ErrorKind::kStopped));
    return false;
  }
  {
    absl::MutexLock l(&mu_);
    ++stats_[i].admitted;
  }
  *done = [this, method, inner = std::move(*done)](absl::Status status) {
    Finish(method, status);
    inner(std::move(status));
  };
  return true;
}

absl::Status RequestGate::AdmitStream(Method method) {
  absl::Status refused;
  Done done = [&refused](absl::Status st) { refused = std::move(st); };
  if (!Admit(method, &done)) return refused;
  return absl::OkStatus();  // `done` (now counting) is dropped: StreamDone counts the end
}

void RequestGate::Finish(Method method, const absl::Status& status) {
  absl::MutexLock l(&mu_);
  MethodStats& s = stats_[static_cast<size_t>(method)];
  ++s.finished;
  if (!status.ok()) ++s.failed[status.code()];
}

RequestGate::MethodStats RequestGate::Stats(Method method) const {
  absl::MutexLock l(&mu_);
  return stats_[static_cast<size_t>(method)];
}

}  // namespace cairn::api
