#include "src/internal.h"

#include <cstdio>
#include <memory>

namespace cairn::recipes::internal {

Clock::time_point DeadlineOf(const CallOptions& call) {
  Clock::time_point d = call.deadline;
  if (call.timeout.count() > 0) {
    Clock::time_point t = Clock::now() + call.timeout;
    if (t < d) d = t;
  }
  return d;
}

CallOptions RpcCall(const CallOptions& call, Clock::time_point deadline) {
  CallOptions out = call;
  out.timeout = std::chrono::milliseconds(0);
  out.deadline = deadline;
  return out;
}

CallOptions CreateCall(const CallOptions& call, Clock::time_point deadline) {
  CallOptions out = RpcCall(call, deadline);
  out.cancel = CancelToken();
  return out;
}

std::string LeaseHex(LeaseId id) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%llx",
                static_cast<unsigned long long>(static_cast<uint64_t>(id)));
  return buf;
}

absl::Status CheckName(const std::string& name, const char* what) {
  if (name.empty()) return absl::InvalidArgumentError(std::string(what) + ": empty name");
  return absl::OkStatus();
}

absl::Status WaitForChange(const WatchClient& watch, const std::string& key,
                           const WatchOptions& opts, const CallOptions& call,
                           Clock::time_point deadline, const Session* session) {
  Promise<bool> woken;
  auto watcher = watch.Watch(key, opts, [woken](const WatchResponse& r) {
    if (!r.events.empty() || r.canceled) woken.Set(true);
  });
  if (!watcher.ok()) return watcher.status();
  uint64_t cancel_id =
      call.cancel.Register([woken] { woken.Set(absl::CancelledError("recipe call canceled")); });
  uint64_t end_id = 0;
  if (session != nullptr) {
    end_id = session->AddEndListener([woken](const absl::Status& why) { woken.Set(why); });
  }
  Future<bool> f = woken.future();
  bool ready = f.WaitUntil(deadline);
  call.cancel.Unregister(cancel_id);
  if (session != nullptr && end_id != 0) session->RemoveEndListener(end_id);
  (*watcher)->Cancel();
  if (!ready) return absl::DeadlineExceededError("recipe call deadline exceeded while waiting");
  return f.Get().status();
}

GetOptions ByCreate(bool first, Revision max_create_revision) {
  GetOptions o;
  o.prefix = true;
  o.sort_target = SortTarget::kCreate;
  o.sort_order = first ? SortOrder::kAscend : SortOrder::kDescend;
  o.limit = 1;
  o.max_create_revision = max_create_revision;
  return o;
}

void DeleteIfCreated(const Kv& kv, const std::string& key, Revision create_revision) {
  Txn t;
  t.If({Cmp::CreateRevision(key) == create_revision}).Then({Op::Delete(key)});
  (void)kv.Commit(t);
}

absl::Status DeleteGranted(const Kv& kv, const Grant& grant, const CallOptions& call) {
  Txn t;
  t.If({grant.Guard()}).Then({Op::Delete(grant.key)});
  return kv.Commit(t, call).status();
}

Future<Completed> DeleteGrantedAsync(const Kv& kv, const Grant& grant, const CallOptions& call,
                                     std::function<void()> on_deleted) {
  Txn t;
  t.If({grant.Guard()}).Then({Op::Delete(grant.key)});
  return Map<TxnResponse, Completed>(
      kv.CommitAsync(t, call),
      [on_deleted =
           std::move(on_deleted)](absl::StatusOr<TxnResponse> r) -> absl::StatusOr<Completed> {
        if (!r.ok()) return r.status();
        on_deleted();
        return Completed{};
      });
}

absl::Status CheckSession(const Session& session) { return session.status(); }

}  // namespace cairn::recipes::internal
