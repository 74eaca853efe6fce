// RequestGate: the one door every client request passes, whatever its transport (gRPC today, the
// HTTP/JSON gateway tomorrow) and whatever its method (ARCHITECTURE.md, "server/api").
//
//   handler: if (!gate->Admit(Method::kPut, &done)) return;   // refused: `done` already ran
//            ... do the work ...; done(status)                 // counted on the way out
//
// Today the gate refuses requests once the member is stopping ("etcdserver: server stopped")
// and counts, per method: admitted, finished, in flight, and failures by gRPC code (what the
// /metrics endpoint will export). It is where the auth token and permissions will be checked,
// where alarms (NOSPACE, CORRUPT) refuse writes, and where per-connection limits will be enforced.
//
// Thread safety: thread-safe; Admit and the wrapped callbacks never block or lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string_view>

#include "absl/status/status.h"

namespace cairn::api {

// Every client method of the etcd v3 API that cairn serves.
enum class Method {
  kRange,
  kPut,
  kDeleteRange,
  kTxn,
  kCompact,
  kLeaseGrant,
  kLeaseRevoke,
  kLeaseKeepAlive,  // one renewal on a keepalive stream
  kLeaseTimeToLive,
  kLeaseLeases,
  kWatch,  // one stream
  kMemberList,
  kMemberAdd,
  kMemberRemove,
  kMemberUpdate,
  kMemberPromote,
  kStatus,
  kMoveLeader,
  kLock,
  kUnlock,
  kCampaign,
  kProclaim,
  kLeader,
  kObserve,  // one stream
  kResign,
  kAlarm,
  kDefragment,
  kHash,
  kHashKV,
  kSnapshot,  // one stream
  // Auth (server/api/auth_service.h).
  kAuthEnable,
  kAuthDisable,
  kAuthStatus,
  kAuthenticate,
  kUserAdd,
  kUserGet,
  kUserList,
  kUserDelete,
  kUserChangePassword,
  kUserGrantRole,
  kUserRevokeRole,
  kRoleAdd,
  kRoleGet,
  kRoleList,
  kRoleDelete,
  kRoleGrantPermission,
  kRoleRevokePermission,
  kCount,  // not a method: the number of them
};

// etcd's name of the method ("Range", "LeaseGrant", ...), as /metrics labels it.
std::string_view MethodName(Method method);

class RequestGate {
 public:
  using Done = std::function<void(absl::Status)>;

  struct MethodStats {
    uint64_t admitted = 0;
    uint64_t finished = 0;                                 // with any status
    uint64_t refused = 0;                                  // by the gate itself
    std::map<absl::StatusCode, uint64_t> refused_by_code;  // the refusals, by their code
    std::map<absl::StatusCode, uint64_t> failed;           // finished with an error, by code
    int64_t in_flight() const { return static_cast<int64_t>(admitted - finished); }
  };

  // Admits a request of `method`. On refusal runs `*done` with the error at once and returns
  // false. Otherwise wraps `*done` so that the outcome is counted when it runs (exactly once).
  // `writes`: for kTxn, whether the txn writes (a read-only txn passes the space check).
  bool Admit(Method method, Done* done, bool writes = true);
  // Set once before serving: consulted for Put, a Txn that writes and LeaseGrant; true refuses
  // them with "etcdserver: mvcc: database space exceeded" (NOSPACE raised, or over the quota).
  void SetSpaceCheck(std::function<bool()> exceeded) { space_exceeded_ = std::move(exceeded); }
  // Set once before serving: true while a CORRUPT alarm is raised on any member. Then Put,
  // DeleteRange, a Txn that writes, Compact, LeaseGrant and LeaseRevoke are refused with
  // DataLoss "etcdserver: corrupt cluster", as etcd's corrupt applier refuses them; reads
  // (Range, a read-only Txn, Watch) and maintenance (Alarm disarm included) still pass. The space
  // check comes first, as etcd's quota check runs before its applier.
  void SetCorruptCheck(std::function<bool()> corrupt) { corrupt_ = std::move(corrupt); }
  // For a stream (Watch, Observe): admits it, or returns why not (counted as refused). The
  // transport calls StreamDone when the stream ends.
  absl::Status AdmitStream(Method method);
  void StreamDone(Method method, const absl::Status& status) { Finish(method, status); }
  // From now on every request is refused with "etcdserver: server stopped".
  void Close() { closed_ = true; }

  MethodStats Stats(Method method) const;

 private:
  void Finish(Method method, const absl::Status& status);

  // Relaxed atomics: every request passes here, so no lock on its path.
  static constexpr size_t kCodes = 17;  // absl::StatusCode values 0..16
  struct Counters {
    std::atomic<uint64_t> admitted{0};
    std::atomic<uint64_t> finished{0};
    std::atomic<uint64_t> refused{0};
    std::array<std::atomic<uint64_t>, kCodes> failed{};
    std::array<std::atomic<uint64_t>, kCodes> refused_codes{};
  };
  // Counts a refusal with `error` and runs `*done` with it.
  static void Refuse(Counters& c, Done* done, absl::Status error);

  std::atomic<bool> closed_{false};
  std::function<bool()> space_exceeded_;
  std::function<bool()> corrupt_;
  std::array<Counters, static_cast<size_t>(Method::kCount)> counters_;
};

}  // namespace cairn::api
