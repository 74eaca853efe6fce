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

absl::Status WaitPredecessorsGone(const Session& session, const std::string& prefix,
                                  Revision my_revision, const CallOptions& call,
                                  Clock::time_point deadline) {
  while (true) {
    auto last = session.kv().Get(prefix, ByCreate(false, my_revision - 1), RpcCall(call, deadline));
    if (!last.ok()) return last.status();
    if (last->kvs.empty()) return absl::OkStatus();
    WatchOptions wo;
    wo.start_revision = last->header.revision + 1;
    wo.filter_put = true;
    absl::Status st =
        WaitForChange(session.watch(), last->kvs[0].key, wo, call, deadline, &session);
    if (!st.ok()) return st;
  }
}

void DeleteIfCreated(const Kv& kv, const std::string& key, Revision create_revision) {
  Txn t;
  t.If({Cmp::CreateRevision(key) == create_revision}).Then({Op::Delete(key)});
  (void)kv.Commit(t);
}

absl::Status CheckSession(const Session& session) { return session.status(); }

}  // namespace cairn::recipes::internal

namespace cairn::recipes::internal {

absl::StatusOr<std::optional<Grant>> AcquireQueued(const Session& session, const std::string& key,
                                                   const std::string& wait_prefix, bool wait,
                                                   const CallOptions& call) {
  if (absl::Status st = CheckSession(session); !st.ok()) return st;
  const Kv& kv = session.kv();
  Clock::time_point deadline = DeadlineOf(call);
  CallOptions rpc = RpcCall(call, deadline);
  PutOptions po;
  po.lease = session.lease();
  Txn t;
  t.If({Cmp::CreateRevision(key) == 0}).Then({Op::Put(key, "", po)}).Else({Op::Get(key)});
  auto r = kv.Commit(t, CreateCall(call, deadline));
  if (!r.ok()) return r.status();
  const bool created = r->succeeded;
  Revision my_rev = r->header.revision;
  if (!created) {
    if (r->responses.empty() || r->responses[0].get.kvs.empty()) {
      return absl::InternalError("recipe: own key missing from txn response");
    }
    my_rev = r->responses[0].get.kvs[0].create_revision;
  }
  auto fail = [&](absl::Status st) {
    if (created) DeleteIfCreated(kv, key, my_rev);
    return st;
  };
  if (!wait) {
    auto older = kv.Get(wait_prefix, ByCreate(false, my_rev - 1), rpc);
    if (!older.ok()) return fail(older.status());
    if (!older->kvs.empty()) {
      if (created) DeleteIfCreated(kv, key, my_rev);
      return std::optional<Grant>();
    }
  } else {
    absl::Status st = WaitPredecessorsGone(session, wait_prefix, my_rev, call, deadline);
    if (!st.ok()) return fail(st);
  }
  auto check = kv.Get(key, {}, rpc);
  if (!check.ok()) return fail(check.status());
  if (check->kvs.empty() || check->kvs[0].create_revision != my_rev ||
      check->kvs[0].lease != session.lease()) {
    absl::Status s = session.status();
    if (!s.ok()) return s;
    return MakeError(ErrorKind::kLeaseLost, "recipe: own key vanished while waiting");
  }
  Grant g;
  g.key = key;
  g.fencing_token = my_rev;
  g.lease = session.lease();
  g.header = check->header;
  return std::optional<Grant>(std::move(g));
}

}  // namespace cairn::recipes::internal
