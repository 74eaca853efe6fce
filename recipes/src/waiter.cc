// The one waiter behind Mutex, RWMutex, Semaphore and Election (see internal.h, QueuedKey).
#include <string>
#include <vector>

#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes::internal {

namespace {

// The first `slots` keys under `prefix` by create revision (keys only).
GetOptions Ahead(int64_t slots) {
  GetOptions o;
  o.prefix = true;
  o.keys_only = true;
  o.sort_target = SortTarget::kCreate;
  o.sort_order = SortOrder::kAscend;
  o.limit = slots;
  return o;
}

// The newest `slots` keys created before `my_rev` (keys only). etcd filters on the create
// revision before it sorts and truncates, so the limit applies to the filtered keys.
GetOptions Older(int64_t slots, Revision my_rev) {
  GetOptions o = ByCreate(/*first=*/false, my_rev - 1);
  o.keys_only = true;
  o.limit = slots;
  return o;
}

int64_t CountOlder(const std::vector<KeyValue>& kvs, Revision my_rev) {
  int64_t n = 0;
  for (const KeyValue& kv : kvs) n += kv.create_revision < my_rev ? 1 : 0;
  return n;
}

std::string Msg(const char* what, const char* text) { return std::string(what) + ": " + text; }

}  // namespace

absl::StatusOr<std::optional<Grant>> AcquireQueued(const Session& session, const QueuedKey& q,
                                                   bool wait, const CallOptions& call,
                                                   const char* what) {
  if (q.slots <= 0) return absl::InvalidArgumentError(Msg(what, "slots must be > 0"));
  if (absl::Status st = CheckSession(session); !st.ok()) return st;
  const Kv& kv = session.kv();
  Clock::time_point deadline = DeadlineOf(call);
  CallOptions rpc = RpcCall(call, deadline);
  PutOptions po;
  po.lease = session.lease();

  // One round trip for the uncontended case: create the key (or find ours) and read who is
  // ahead, in one Txn (its ops run in order, so the read sees the put).
  Txn t;
  t.If({Cmp::CreateRevision(q.key) == 0})
      .Then({Op::Put(q.key, q.value, po), Op::Get(q.wait_prefix, Ahead(q.slots))})
      .Else({Op::Get(q.key), Op::Get(q.wait_prefix, Ahead(q.slots))});
  auto r = kv.Commit(t, CreateCall(call, deadline));
  if (!r.ok()) return r.status();
  if (r->responses.size() != 2) {
    return absl::InternalError(Msg(what, "unexpected txn response"));
  }
  const bool created = r->succeeded;
  Revision my_rev = r->header.revision;
  if (!created) {
    const auto& mine = r->responses[0].get.kvs;
    if (mine.empty()) return absl::InternalError(Msg(what, "own key missing from txn response"));
    my_rev = mine[0].create_revision;
    if (q.update_value && mine[0].value != q.value) {
      Txn upd;
      upd.If({Cmp::CreateRevision(q.key) == my_rev}).Then({Op::Put(q.key, q.value, po)});
      auto u = kv.Commit(upd, rpc);
      if (!u.ok()) return u.status();
      if (!u->succeeded) return MakeError(ErrorKind::kLeaseLost, Msg(what, "own key vanished"));
    }
  }
  auto fail = [&](absl::Status st) {
    if (created) DeleteIfCreated(kv, q.key, my_rev);
    return st;
  };
  auto grant = [&](const ResponseHeader& header) {
    Grant g;
    g.key = q.key;
    g.fencing_token = my_rev;
    g.lease = session.lease();
    g.header = header;
    return std::optional<Grant>(std::move(g));
  };
  if (CountOlder(r->responses[1].get.kvs, my_rev) < q.slots) return grant(r->header);
  if (!wait) {
    if (created) DeleteIfCreated(kv, q.key, my_rev);
    return std::optional<Grant>();
  }

  // Wait: read the keys still ahead and watch, from just after that read, for a deletion that
  // can let us in (etcd's waitDeletes for one slot; any deletion under the prefix for more).
  while (true) {
    auto older = kv.Get(q.wait_prefix, Older(q.slots, my_rev), rpc);
    if (!older.ok()) return fail(older.status());
    if (static_cast<int64_t>(older->kvs.size()) < q.slots) break;
    WatchOptions wo;
    wo.start_revision = older->header.revision + 1;
    wo.filter_put = true;
    std::string watched = q.wait_prefix;
    if (q.slots == 1) {
      watched = older->kvs[0].key;
    } else {
      wo.prefix = true;
    }
    absl::Status st = WaitForChange(session.watch(), watched, wo, call, deadline, &session);
    if (!st.ok()) return fail(st);
  }

  // Our turn, if our key is still the one we created, on our lease, and the session lives (a
  // lost session may not have expired the key on the server yet).
  auto check = kv.Get(q.key, {}, rpc);
  if (!check.ok()) return fail(check.status());
  if (check->kvs.empty() || check->kvs[0].create_revision != my_rev ||
      check->kvs[0].lease != session.lease()) {
    absl::Status s = session.status();
    if (!s.ok()) return s;
    return MakeError(ErrorKind::kLeaseLost, Msg(what, "own key vanished while waiting"));
  }
  if (absl::Status s = session.status(); !s.ok()) return fail(s);
  return grant(check->header);
}

Future<std::optional<Grant>> TryAcquireAsync(std::shared_ptr<Session> session, std::string key,
                                             std::string prefix, const CallOptions& call,
                                             const char* what, int64_t slots) {
  using Result = std::optional<Grant>;
  if (slots <= 0)
    return MakeReadyFuture<Result>(absl::InvalidArgumentError(Msg(what, "slots must be > 0")));
  if (absl::Status st = CheckSession(*session); !st.ok()) return MakeReadyFuture<Result>(st);
  PutOptions po;
  po.lease = session->lease();
  Txn t;
  t.If({Cmp::CreateRevision(key) == 0})
      .Then({Op::Put(key, "", po), Op::Get(prefix, Ahead(slots))})
      .Else({Op::Get(key), Op::Get(prefix, Ahead(slots))});
  Promise<Result> p;
  Future<Result> f = p.future();
  std::string msg_prefix = what;
  session->kv()
      .CommitAsync(t, CreateCall(call, DeadlineOf(call)))
      .Then([session, key, slots, p, msg_prefix](absl::StatusOr<TxnResponse> r) {
        if (!r.ok()) return p.Set(r.status());
        if (r->responses.size() != 2 || (!r->succeeded && r->responses[0].get.kvs.empty())) {
          return p.Set(absl::InternalError(Msg(msg_prefix.c_str(), "unexpected txn response")));
        }
        const bool created = r->succeeded;
        Revision my_rev = created ? r->header.revision : r->responses[0].get.kvs[0].create_revision;
        if (CountOlder(r->responses[1].get.kvs, my_rev) < slots) {
          Grant g;
          g.key = key;
          g.fencing_token = my_rev;
          g.lease = session->lease();
          g.header = r->header;
          return p.Set(Result(std::move(g)));
        }
        if (!created) return p.Set(Result());
        Txn undo;
        undo.If({Cmp::CreateRevision(key) == my_rev}).Then({Op::Delete(key)});
        session->kv().CommitAsync(undo).Then(
            [p](const absl::StatusOr<TxnResponse>&) { p.Set(Result()); });
      });
  return f;
}

}  // namespace cairn::recipes::internal
