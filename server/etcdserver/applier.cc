#include "server/etcdserver/applier.h"

#include "server/base/check.h"
#include "server/base/errors.h"
#include "server/base/logging.h"
#include "server/base/thread_name.h"
#include "server/storage/snapshot.h"

namespace cairn::etcdserver {

using base::ErrorKind;
using base::MakeError;

namespace {

std::vector<std::string> Urls(const google::protobuf::RepeatedPtrField<std::string>& urls) {
  return std::vector<std::string>(urls.begin(), urls.end());
}

// etcd's applierV3Corrupt: while a CORRUPT alarm is raised, the requests that change the
// keyspace or the leases are refused at apply, on every member alike (the alarm list is
// replicated state, changed only by earlier entries of the log).
bool RefusedWhenCorrupt(const cairnpb::InternalRequest& r) {
  using R = cairnpb::InternalRequest;
  switch (r.request_case()) {
    case R::kPut:
    case R::kDeleteRange:
    case R::kCompaction:
    case R::kLeaseGrant:
    case R::kLeaseRevoke:
      return true;
    case R::kTxn:
      return !mvcc::IsTxnReadOnly(r.txn());
    default:
      return false;
  }
}

}  // namespace

mvcc::ApplyResult ApplyKvRequest(mvcc::KvStore* kv, mvcc::KvStore::EntryBatch& b,
                                 const cairnpb::InternalRequest& r) {
  using R = cairnpb::InternalRequest;
  switch (r.request_case()) {
    case R::kPut:
      return kv->Put(b, r.put());
    case R::kDeleteRange:
      return kv->DeleteRange(b, r.delete_range());
    case R::kTxn:
      return kv->Txn(b, r.txn());
    case R::kCompaction:
      return kv->Compact(b, r.compaction());
    case R::kLeaseGrant:
      return kv->GrantLease(b, r.lease_grant());
    case R::kLeaseRevoke:
      return kv->RevokeLease(b, r.lease_revoke());
    case R::kLeaseCheckpoint:
      return kv->CheckpointLeases(b, r.lease_checkpoint());
    case R::REQUEST_NOT_SET:
      return mvcc::ApplyResult{};  // moves the applied index only
    case R::kMemberChange:
    case R::kMemberAttrs:
    case R::kMemberUpdate:
    case R::kAlarm:
      break;
    default:  // auth requests (AuthStore::IsAuthRequest)
      break;
  }
  CAIRN_CHECK(false) << "not a KV or lease request: " << r.request_case();
  return mvcc::ApplyResult{};
}

Applier::Applier(const Deps& deps, Hooks hooks) : deps_(deps), hooks_(std::move(hooks)) {
  applied_ = deps_.kv->applied_index();
}

Applier::~Applier() { Stop(); }

void Applier::Start() {
  CAIRN_CHECK(!thread_.joinable());
  thread_ = std::thread([this] {
    base::SetThreadName("cairn-apply");
    Loop();
  });
}

void Applier::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Applier::Push(Job job) {
  absl::MutexLock l(&mu_);
  queue_.push_back(std::move(job));
}

void Applier::Enqueue(std::vector<raft::Entry> entries) {
  Job job;
  job.entries = std::move(entries);
  Push(std::move(job));
}

void Applier::EnqueueSnapshot(std::string path, std::function<void()> installed) {
  Job job;
  job.snapshot_path = std::move(path);
  job.callback = std::move(installed);
  Push(std::move(job));
}

void Applier::EnqueueCallback(std::function<void()> f) {
  Job job;
  job.callback = std::move(f);
  Push(std::move(job));
}

void Applier::Loop() {
  while (true) {
    std::deque<Job> jobs;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &Applier::HasWork));
      if (queue_.empty()) return;  // stopping and drained
      jobs.swap(queue_);
    }
    RunJobs(jobs);
  }
}

void Applier::RunQueued() {
  CAIRN_CHECK(!thread_.joinable()) << "RunQueued with the applier thread running";
  while (true) {
    std::deque<Job> jobs;
    {
      absl::MutexLock l(&mu_);
      if (queue_.empty()) return;
      jobs.swap(queue_);
    }
    RunJobs(jobs);
  }
}

void Applier::RunJobs(std::deque<Job>& jobs) {
  // Consecutive entry jobs are applied as one batch (one publish, one watcher notification).
  std::vector<raft::Entry> batch;
  auto flush = [&] {
    if (!batch.empty()) ApplyEntries(batch);
    batch.clear();
  };
  for (Job& job : jobs) {
    if (!job.snapshot_path.empty()) {
      flush();
      InstallSnapshot(job.snapshot_path);
    }
    for (raft::Entry& e : job.entries) batch.push_back(std::move(e));
    if (batch.size() >= deps_.max_batch_entries) flush();
    if (job.callback) {
      flush();
      job.callback();
    }
  }
  flush();
}

void Applier::ApplyEntries(std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  mvcc::KvStore* kv = deps_.kv;
  std::vector<Applied> results;
  std::vector<std::pair<uint64_t, raft::ConfChange>> confs;
  std::vector<const raft::Entry*> handled;  // for hooks_.on_entry
  const uint64_t store_applied = kv->applied_index();
  bool wrote = false;
  for (const raft::Entry& e : entries) {
    bool skip = e.index <= store_applied;  // replayed after a restart: already in the store
    if (!skip && hooks_.on_entry) handled.push_back(&e);
    if (e.type == raft::EntryType::kConfChange) {
      auto cc = raft::DecodeConfChange(e.data);
      CAIRN_CHECK(cc.ok()) << "corrupt conf change at " << e.index;
      wrote = ApplyConfChangeEntry(e, skip) || wrote;
      confs.emplace_back(e.index, *cc);
      continue;
    }
    if (skip) continue;  // already in the store
    if (e.data.empty()) {
      // A leader's empty entry changes nothing but the applied index, which moves all the same
      // (as etcd's consistent index): the raft driver snapshots at the applied index it is told,
      // the WAL's marker must never be above the store's applied index (Server::Open refuses to
      // start then), and a snapshot sent to a follower must cover the index it claims.
      auto b = kv->Begin(e.index);
      mvcc::ApplyResult none;
      kv->Commit(*b, &none);
      wrote = true;
      continue;
    }
    cairnpb::InternalRequest r;
    CAIRN_CHECK(r.ParseFromString(e.data)) << "corrupt entry at " << e.index;
    wrote = true;
    if (r.proposer() == deps_.member_id && r.id() != 0) deps_.waits->Pin(r.id());
    if (r.has_member_attrs() || r.has_member_update()) {
      ApplyMemberEntry(e, r);
      results.push_back({r.proposer(), r.id(), mvcc::ApplyResult{}});
      continue;
    }
    const bool corrupt = deps_.alarms && deps_.alarms->HasAny(etcdserverpb::CORRUPT);
    if (r.has_put() && !corrupt) {
      // A plain put joins the store's open group: one RocksDB write for a run of puts.
      results.push_back({r.proposer(), r.id(), kv->PutGrouped(e.index, r.put())});
      continue;
    }
    if (r.has_delete_range() && mvcc::KvStore::IsGroupable(r.delete_range()) && !corrupt) {
      results.push_back({r.proposer(), r.id(), kv->DeleteGrouped(e.index, r.delete_range())});
      continue;
    }
    auto b = kv->Begin(e.index);
    if (r.has_alarm()) {
      mvcc::ApplyResult res;
      if (deps_.alarms) res.alarm = deps_.alarms->Apply(r.alarm(), b->batch());
      kv->Commit(*b, &res);
      results.push_back({r.proposer(), r.id(), std::move(res)});
      continue;
    }
    mvcc::ApplyResult res;
    if (auth::AuthStore::IsAuthRequest(r)) {
      // Auth changes go into the entry's batch like any other (docs/auth.md); a refused one
      // writes nothing (Commit clears the batch on an error).
      res.status =
          deps_.auth ? deps_.auth->Apply(r, b->batch()) : MakeError(ErrorKind::kAuthNotEnabled);
    } else if (corrupt && RefusedWhenCorrupt(r)) {
      res.status = MakeError(ErrorKind::kCorrupt);  // only the applied index moves
    } else {
      res = ApplyKvRequest(kv, *b, r);
    }
    kv->Commit(*b, &res);
    results.push_back({r.proposer(), r.id(), std::move(res)});
  }
  kv->FlushGroup();
  if (wrote) kv->Publish();
  for (const raft::Entry* e : handled) hooks_.on_entry(*e);
  if (entries.back().index > applied_.load()) applied_ = entries.back().index;
  entries_.fetch_add(entries.size(), std::memory_order_relaxed);
  Notify(results);
  if (hooks_.on_applied) hooks_.on_applied(std::move(confs), applied_.load());
  if (deps_.reads) deps_.reads->OnApplied(applied_.load());
}

void Applier::Notify(std::vector<Applied>& results) {
  for (Applied& a : results) {
    mvcc::ApplyResult& r = a.result;
    // The events go to the hub's shared batch; the waiter's answer does not read them.
    if (r.revision > 0) deps_.watch_hub->Notify(r.revision, std::move(r.events));
    for (const auto& g : r.leases_granted) deps_.lessor->OnGranted(g);
    for (int64_t id : r.leases_revoked) deps_.lessor->OnRevoked(id);
    for (const auto& c : r.leases_checkpointed) deps_.lessor->OnCheckpointed(c);
  }
  for (Applied& a : results) {
    if (a.proposer != deps_.member_id) continue;
    std::optional<Waiter> w = deps_.waits->Take(a.id);
    if (w && w->done) w->done(std::move(a.result));
  }
}

bool Applier::ApplyConfChangeEntry(const raft::Entry& e, bool skip) {
  raft::ConfChange cc = *raft::DecodeConfChange(e.data);
  cairnpb::InternalRequest ctx;
  if (!cc.context.empty()) CAIRN_CHECK(ctx.ParseFromString(cc.context));
  Membership* membership = deps_.membership;
  // Replay after a crash sees the membership exactly as of the previous entry (the change and
  // the applied index are one batch), so it judges the change as the first apply did.
  const bool valid = raft::ValidateConfChange(membership->ConfState(), cc).ok();
  const bool remove = cc.type == raft::ConfChangeType::kRemoveNode;
  const bool removed_self = !skip && valid && remove && cc.node_id == deps_.member_id;
  if (!skip) {
    auto b = deps_.kv->Begin(e.index);
    if (valid && remove) {
      membership->Remove(cc.node_id, b->batch());
    } else if (valid) {
      cairnpb::Member m = ctx.member_change();
      m.set_id(cc.node_id);
      m.set_is_learner(cc.type == raft::ConfChangeType::kAddLearnerNode);
      membership->Add(m, b->batch());
    }
    mvcc::ApplyResult none;
    deps_.kv->Commit(*b, &none);
    if (valid && cc.node_id != deps_.member_id) {
      if (remove) {
        if (hooks_.on_peer_removed) hooks_.on_peer_removed(cc.node_id);
      } else if (auto stored = membership->Get(cc.node_id); stored && hooks_.on_peer_set) {
        hooks_.on_peer_set(cc.node_id, Urls(stored->peer_urls()));
      }
    }
  }
  AnswerConfChange(cc, ctx, valid);
  if (removed_self && hooks_.on_removed) hooks_.on_removed();
  return !skip;
}

void Applier::AnswerConfChange(const raft::ConfChange& cc, const cairnpb::InternalRequest& ctx,
                               bool valid) {
  if (ctx.proposer() != deps_.member_id || ctx.id() == 0) return;
  std::optional<Waiter> w = deps_.waits->Take(ctx.id());
  if (!w || !w->member_done) return;
  if (!valid) {
    w->member_done(cc.type == raft::ConfChangeType::kRemoveNode
                       ? MakeError(ErrorKind::kMemberNotFound)
                       : MakeError(ErrorKind::kMemberExist));
    return;
  }
  auto m = deps_.membership->Get(cc.node_id);
  cairnpb::Member out = m ? *m : ctx.member_change();
  out.set_id(cc.node_id);
  w->member_done(out);
}

void Applier::ApplyMemberEntry(const raft::Entry& e, const cairnpb::InternalRequest& r) {
  Membership* membership = deps_.membership;
  auto b = deps_.kv->Begin(e.index);
  if (r.has_member_attrs()) {
    const auto& m = r.member_attrs();
    membership->SetAttributes(m.id(), m.name(), Urls(m.client_urls()), b->batch());
  } else {
    membership->SetPeerUrls(r.member_update().id(), Urls(r.member_update().peer_urls()),
                            b->batch());
  }
  mvcc::ApplyResult none;
  deps_.kv->Commit(*b, &none);
  if (r.has_member_update()) {
    const auto& m = r.member_update();
    if (m.id() != deps_.member_id && membership->Get(m.id()) && hooks_.on_peer_set) {
      hooks_.on_peer_set(m.id(), Urls(m.peer_urls()));
    }
  }
}

void Applier::InstallSnapshot(const std::string& path) {
  mvcc::KvStore* kv = deps_.kv;
  // The dump is the sender's store when it sent it, which may be older than this store: a leader
  // still applying its backlog (just elected after a restart) sends a dump behind what this
  // member installed from the previous leader. Both are prefixes of the same committed log, so
  // the store keeps the longer one; installing would move the revision back under readers and
  // watchers (WatchHub CHECK-fails on that). Raft then replays entries past its snapshot, and
  // those the store holds are skipped. Found by the whole-member simulation.
  auto dump_applied = storage::ReadSnapshotMetaInt(path, "applied_index", 0, deps_.backend->env());
  CAIRN_CHECK(dump_applied.ok()) << "reading snapshot " << path << ": " << dump_applied.status();
  if (static_cast<uint64_t>(*dump_applied) <= kv->applied_index()) {
    CAIRN_LOG(kInfo, "etcdserver")
        << "kept the store (applied index " << kv->applied_index()
        << ") over an older snapshot (applied index " << *dump_applied << ")";
    if (hooks_.on_installed) hooks_.on_installed(kv->applied_index());
    return;
  }
  kv->BeginInstall();
  absl::Status st = storage::InstallSnapshotFile(deps_.backend, path);
  CAIRN_CHECK(st.ok()) << "installing snapshot " << path << ": " << st;
  kv->ReloadAfterInstall();
  deps_.watch_hub->ResetAfterInstall();
  deps_.membership->Load();
  if (deps_.alarms) deps_.alarms->Load();
  if (deps_.auth) deps_.auth->Load();
  deps_.lessor->Restore(kv->Leases());
  if (kv->applied_index() > applied_.load()) applied_ = kv->applied_index();
  if (hooks_.on_peer_set) {
    for (const auto& m : deps_.membership->Members()) {
      if (m.id() != deps_.member_id) hooks_.on_peer_set(m.id(), Urls(m.peer_urls()));
    }
  }
  if (deps_.reads) deps_.reads->OnApplied(applied_.load());
  if (hooks_.on_installed) hooks_.on_installed(kv->applied_index());
  CAIRN_LOG(kInfo, "etcdserver") << "installed snapshot: applied index " << kv->applied_index()
                                 << ", revision " << kv->View().revision;
}

}  // namespace cairn::etcdserver
