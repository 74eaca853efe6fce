#include "server/mvcc/kv_store.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>

#include "absl/time/time.h"
#include "rocksdb/comparator.h"
#include "server/base/check.h"
#include "server/base/encoding.h"
#include "server/base/errors.h"
#include "server/base/logging.h"
#include "server/base/thread_name.h"
#include "server/mvcc/kv_store_internal.h"
#include "server/mvcc/kv_store_source.h"
#include "server/mvcc/kv_txn_writer.h"
#include "server/storage/encoding.h"

namespace cairn::mvcc {

using base::ErrorKind;
using base::MakeError;
using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;
using internal::DecodeLatest;
using internal::IsFromKey;
using internal::kKindDelete;
using internal::kKindLive;
using internal::kKindPut;
using internal::LatestRecord;
using internal::LeaseKey;
using internal::PastEnd;
using internal::PutMetaInt;
using mvccpb::KeyValue;
using storage::Cf;

namespace {

std::string LeaseValue(int64_t ttl_seconds, int64_t remaining_ms) {
  std::string out;
  base::PutBE64(&out, static_cast<uint64_t>(ttl_seconds));
  base::PutBE64(&out, static_cast<uint64_t>(remaining_ms));
  return out;
}

}  // namespace

absl::Status ResolveHistoryRecord(storage::Backend* backend, const rocksdb::ReadOptions& ro,
                                  int64_t main, int64_t sub, std::string* record) {
  if (record->empty() || (*record)[0] != kKindLive) return absl::OkStatus();
  const std::string where = std::to_string(main) + "." + std::to_string(sub);
  KeyValue marker;
  if (!marker.ParseFromArray(record->data() + 1, static_cast<int>(record->size() - 1))) {
    return absl::DataLossError("corrupt live history record " + where);
  }
  std::string latest;
  rocksdb::Status s = backend->db()->Get(ro, backend->cf(Cf::kLatest), marker.key(), &latest);
  if (s.IsNotFound()) return absl::DataLossError("live history record " + where + " not live");
  if (!s.ok()) return absl::InternalError("rocksdb get: " + s.ToString());
  const LatestRecord rec = DecodeLatest(latest);
  KeyValue kv;
  if (rec.sub != sub || !kv.ParseFromArray(rec.kv.data(), static_cast<int>(rec.kv.size())) ||
      kv.mod_revision() != main) {
    return absl::DataLossError("live history record " + where + " disagrees with latest");
  }
  record->assign(1, kKindPut);
  record->append(rec.kv.data(), rec.kv.size());
  return absl::OkStatus();
}

absl::Status ReadHistoryRecord(storage::Backend* backend, const rocksdb::ReadOptions& ro,
                               int64_t main, int64_t sub, std::string* record) {
  rocksdb::Status s =
      backend->db()->Get(ro, backend->cf(Cf::kRev), storage::RevKey(main, sub), record);
  if (s.IsNotFound()) {
    return absl::NotFoundError("no history record " + std::to_string(main) + "." +
                               std::to_string(sub));
  }
  if (!s.ok()) return absl::InternalError("rocksdb get: " + s.ToString());
  return ResolveHistoryRecord(backend, ro, main, sub, record);
}

namespace {

// etcd's applier Range on top of rangeKeys: filters, sort, limit, keys_only. `counts` (may be
// null) serves and remembers the counts of paginated ranges; only a snapshot's reader passes it.
absl::StatusOr<etcdserverpb::RangeResponse> DoRange(const KvStore::Source& src, int64_t cur_rev,
                                                    int64_t compact_rev, const RangeRequest& r,
                                                    RangeCountCache* counts = nullptr);

bool CompareKV(const Compare& c, const KeyValue& kv) {
  int result = 0;
  auto cmp = [](int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (c.target()) {
    case Compare::VALUE: {
      const std::string& v = c.target_union_case() == Compare::kValue ? c.value() : "";
      int r = kv.value().compare(v);
      result = r < 0 ? -1 : (r > 0 ? 1 : 0);
      break;
    }
    case Compare::CREATE:
      result = cmp(kv.create_revision(),
                   c.target_union_case() == Compare::kCreateRevision ? c.create_revision() : 0);
      break;
    case Compare::MOD:
      result = cmp(kv.mod_revision(),
                   c.target_union_case() == Compare::kModRevision ? c.mod_revision() : 0);
      break;
    case Compare::VERSION:
      result = cmp(kv.version(), c.target_union_case() == Compare::kVersion ? c.version() : 0);
      break;
    case Compare::LEASE:
      result = cmp(kv.lease(), c.target_union_case() == Compare::kLease ? c.lease() : 0);
      break;
    default:
      break;
  }
  switch (c.result()) {
    case Compare::EQUAL:
      return result == 0;
    case Compare::NOT_EQUAL:
      return result != 0;
    case Compare::GREATER:
      return result > 0;
    case Compare::LESS:
      return result < 0;
    default:
      return true;
  }
}

// etcd's applyCompare: every key of the compare's range must satisfy it.
bool ApplyCompare(const KvStore::Source& src, int64_t cur_rev, const Compare& c) {
  std::vector<KeyValue> kvs;
  bool found = false;
  bool all = true;
  src.ScanLatest(c.key(), c.range_end(), [&](const LatestRecord& rec) {
    KeyValue kv;
    CAIRN_CHECK(kv.ParseFromArray(rec.kv.data(), static_cast<int>(rec.kv.size())))
        << "corrupt latest record";
    found = true;
    if (!CompareKV(c, kv)) all = false;
  });
  (void)cur_rev;
  if (!found) {
    // A value compare on a missing key always fails (no way to tell missing from empty).
    if (c.target() == Compare::VALUE) return false;
    return CompareKV(c, KeyValue());
  }
  return all;
}

// etcd's compareToPath: the branch taken by the txn and each nested txn on that path, all
// evaluated against the state before the txn runs.
void CompareToPath(const KvStore::Source& src, int64_t cur_rev, const TxnRequest& t,
                   std::vector<bool>* path) {
  bool ok = true;
  for (const Compare& c : t.compare()) {
    if (!ApplyCompare(src, cur_rev, c)) {
      ok = false;
      break;
    }
  }
  path->push_back(ok);
  for (const RequestOp& op : ok ? t.success() : t.failure()) {
    if (op.has_request_txn()) CompareToPath(src, cur_rev, op.request_txn(), path);
  }
}

// Visits the ops of the chosen branches; returns the first error from fn.
template <typename Fn>
absl::Status CheckRequests(const TxnRequest& t, const std::vector<bool>& path, size_t* pos, Fn fn) {
  bool ok = path[(*pos)++];
  for (const RequestOp& op : ok ? t.success() : t.failure()) {
    if (op.has_request_txn()) {
      absl::Status s = CheckRequests(op.request_txn(), path, pos, fn);
      if (!s.ok()) return s;
      continue;
    }
    absl::Status s = fn(op);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckRange(const RequestOp& op, int64_t cur_rev, int64_t compact_rev) {
  if (!op.has_request_range()) return absl::OkStatus();
  int64_t rev = op.request_range().revision();
  if (rev == 0) return absl::OkStatus();
  if (rev > cur_rev) return MakeError(ErrorKind::kFutureRev);
  if (rev < compact_rev) return MakeError(ErrorKind::kCompacted);
  return absl::OkStatus();
}

template <typename T>
void SortKvs(std::vector<KeyValue>* kvs, bool descend, T key) {
  if (descend) {
    std::stable_sort(kvs->begin(), kvs->end(),
                     [&](const KeyValue& a, const KeyValue& b) { return key(b) < key(a); });
  } else {
    std::stable_sort(kvs->begin(), kvs->end(),
                     [&](const KeyValue& a, const KeyValue& b) { return key(a) < key(b); });
  }
}

absl::StatusOr<etcdserverpb::RangeResponse> DoRange(const KvStore::Source& src, int64_t cur_rev,
                                                    int64_t compact_rev, const RangeRequest& r,
                                                    RangeCountCache* counts) {
  etcdserverpb::RangeResponse resp;
  resp.mutable_header();
  int64_t limit = r.limit();
  if (r.sort_order() != RangeRequest::NONE || r.min_mod_revision() != 0 ||
      r.max_mod_revision() != 0 || r.min_create_revision() != 0 || r.max_create_revision() != 0) {
    limit = 0;  // fetch everything; sort and truncate afterwards
  }
  if (limit > 0) ++limit;  // one extra for `more`
  // A page of a paginated range: the first `limit` keys of the range in key order.
  const bool page = counts && limit > 0 && !r.count_only() && !r.range_end().empty() &&
                    r.sort_target() == RangeRequest::KEY;
  const int64_t read_rev = r.revision() > 0 ? r.revision() : cur_rev;
  std::optional<int64_t> known;
  if (page) known = counts->Find(r.key(), r.range_end(), read_rev);
  auto rr = src.RangeKeys(r.key(), r.range_end(), cur_rev, compact_rev, r.revision(), limit,
                          r.count_only(), known);
  if (!rr.ok()) return rr.status();
  std::vector<KeyValue>& kvs = rr->kvs;
  auto prune = [&](auto drop) {
    kvs.erase(std::remove_if(kvs.begin(), kvs.end(), drop), kvs.end());
  };
  if (r.max_mod_revision() != 0)
    prune([&](const KeyValue& kv) { return kv.mod_revision() > r.max_mod_revision(); });
  if (r.min_mod_revision() != 0)
    prune([&](const KeyValue& kv) { return kv.mod_revision() < r.min_mod_revision(); });
  if (r.max_create_revision() != 0)
    prune([&](const KeyValue& kv) { return kv.create_revision() > r.max_create_revision(); });
  if (r.min_create_revision() != 0)
    prune([&](const KeyValue& kv) { return kv.create_revision() < r.min_create_revision(); });

  auto order = r.sort_order();
  // Results come in key order, so KEY+NONE needs no sort; another target sorts ASCEND by default.
  if (r.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE)
    order = RangeRequest::ASCEND;
  if (order == RangeRequest::ASCEND || order == RangeRequest::DESCEND) {
    bool desc = order == RangeRequest::DESCEND;
    switch (r.sort_target()) {
      case RangeRequest::KEY:
        SortKvs(&kvs, desc, [](const KeyValue& kv) -> const std::string& { return kv.key(); });
        break;
      case RangeRequest::VERSION:
        SortKvs(&kvs, desc, [](const KeyValue& kv) { return kv.version(); });
        break;
      case RangeRequest::CREATE:
        SortKvs(&kvs, desc, [](const KeyValue& kv) { return kv.create_revision(); });
        break;
      case RangeRequest::MOD:
        SortKvs(&kvs, desc, [](const KeyValue& kv) { return kv.mod_revision(); });
        break;
      case RangeRequest::VALUE:
        SortKvs(&kvs, desc, [](const KeyValue& kv) -> const std::string& { return kv.value(); });
        break;
      default:
        break;
    }
  }
  // This page's count serves the same page asked again; the next page starts just after its last
  // key (nothing sorts between k and k + "\0") and holds the keys this one did not return.
  if (page && !known) counts->Remember(r.key(), r.range_end(), read_rev, rr->count);
  if (r.limit() > 0 && static_cast<int64_t>(kvs.size()) > r.limit()) {
    kvs.resize(r.limit());
    resp.set_more(true);
    if (page) {
      counts->Remember(kvs.back().key() + std::string(1, '\0'), r.range_end(), read_rev,
                       rr->count - static_cast<int64_t>(kvs.size()));
    }
  }
  resp.mutable_header()->set_revision(rr->rev);
  resp.set_count(rr->count);
  for (KeyValue& kv : kvs) {
    if (r.keys_only()) kv.clear_value();
    *resp.add_kvs() = std::move(kv);
  }
  return resp;
}

// Executes the ranges of a read-only txn (no writes) against `src`.
void ReadTxnBranch(const KvStore::Source& src, int64_t cur_rev, int64_t compact_rev,
                   const TxnRequest& t, const std::vector<bool>& path, size_t* pos,
                   TxnResponse* out) {
  bool ok = path[(*pos)++];
  out->mutable_header();
  out->set_succeeded(ok);
  for (const RequestOp& op : ok ? t.success() : t.failure()) {
    auto* ro = out->add_responses();
    if (op.has_request_range()) {
      auto rr = DoRange(src, cur_rev, compact_rev, op.request_range());
      CAIRN_CHECK(rr.ok()) << "range checked before: " << rr.status();
      *ro->mutable_response_range() = std::move(*rr);
    } else if (op.has_request_txn()) {
      ReadTxnBranch(src, cur_rev, compact_rev, op.request_txn(), path, pos,
                    ro->mutable_response_txn());
    }
  }
}

}  // namespace

bool IsTxnReadOnly(const TxnRequest& t) {
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const RequestOp& op : *ops) {
      if (op.has_request_put() || op.has_request_delete_range()) return false;
      if (op.has_request_txn() && !IsTxnReadOnly(op.request_txn())) return false;
    }
  }
  return true;
}

void KvStore::LoadFromBackend() {
  // etcd's store starts at revision 1: the first write of a new cluster is revision 2.
  revision_ = backend_->ReadMetaInt("revision", 1);
  compact_revision_ = backend_->ReadMetaInt("compact_revision", -1);
  applied_index_ = static_cast<uint64_t>(backend_->ReadMetaInt("applied_index", 0));
  leases_.clear();
  for (const LeaseRecord& l : Leases()) leases_.insert(l.id);
}

KvStore::KvStore(storage::Backend* backend) : backend_(backend) {
  LoadFromBackend();
  finished_compact_revision_ = backend_->ReadMetaInt("finished_compact_revision", 0);
  Publish();
  compactor_ = std::thread([this] {
    base::SetThreadName("cairn-compact");
    CompactorLoop();
  });
  if (compact_revision_ > finished_compact_revision_) StartCompaction(compact_revision_);
}

KvStore::~KvStore() {
  std::vector<std::pair<int64_t, std::function<void(bool)>>> waiters;
  {
    absl::MutexLock l(&compact_mu_);
    closing_ = true;
    waiters.swap(compact_waiters_);
  }
  compact_cv_.SignalAll();
  compactor_.join();
  for (auto& w : waiters) w.second(false);
}

ReadView KvStore::View() const {
  absl::MutexLock l(&view_mu_);
  return view_;
}

void KvStore::Publish() {
  FlushGroup();
  rocksdb::DB* db = backend_->db();
  std::shared_ptr<const rocksdb::Snapshot> snap(
      db->GetSnapshot(), [db](const rocksdb::Snapshot* s) { db->ReleaseSnapshot(s); });
  absl::MutexLock l(&view_mu_);
  view_.snapshot = std::move(snap);
  view_.revision = revision_;
  view_.compact_revision = compact_revision_;
}

absl::StatusOr<etcdserverpb::RangeResponse> KvStore::Range(const ReadView& view,
                                                           const RangeRequest& r) const {
  Source src(backend_, view.snapshot.get());
  return DoRange(src, view.revision, view.compact_revision, r, &range_counts_);
}

absl::StatusOr<TxnResponse> KvStore::ReadTxn(const ReadView& view, const TxnRequest& r) const {
  Source src(backend_, view.snapshot.get());
  std::vector<bool> path;
  CompareToPath(src, view.revision, r, &path);
  size_t pos = 0;
  absl::Status s = CheckRequests(r, path, &pos, [&](const RequestOp& op) {
    return CheckRange(op, view.revision, view.compact_revision);
  });
  if (!s.ok()) return s;
  TxnResponse resp;
  pos = 0;
  ReadTxnBranch(src, view.revision, view.compact_revision, r, path, &pos, &resp);
  resp.mutable_header()->set_revision(view.revision);
  return resp;
}

std::vector<std::string> KvStore::LeaseKeys(const ReadView& view, int64_t lease_id) const {
  Source src(backend_, view.snapshot.get());
  std::vector<std::string> keys;
  std::string prefix = LeaseKey(lease_id, "");
  auto it = src.Iter(Cf::kLeaseKeys);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    keys.push_back(it->key().ToString().substr(8));
  }
  return keys;
}

std::vector<LeaseRecord> KvStore::Leases() const {
  std::vector<LeaseRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(
      backend_->db()->NewIterator(rocksdb::ReadOptions(), backend_->cf(Cf::kLease)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view v = it->value().ToStringView();
    CAIRN_CHECK(it->key().size() == 8 && v.size() == 16) << "corrupt lease record";
    out.push_back(LeaseRecord{static_cast<int64_t>(base::GetBE64(it->key().ToStringView())),
                              static_cast<int64_t>(base::GetBE64(v)),
                              static_cast<int64_t>(base::GetBE64(v.substr(8)))});
  }
  return out;
}

absl::Status KvStore::ReadEvents(const ReadView& view, int64_t from, const std::string& key,
                                 const std::string& range_end, bool with_prev_kv, size_t max_events,
                                 std::vector<mvccpb::Event>* events, int64_t* next) const {
  if (from < view.compact_revision) return MakeError(ErrorKind::kCompacted);
  *next = from;
  if (from > view.revision) return absl::OkStatus();
  Source src(backend_, view.snapshot.get());
  auto it = src.Iter(Cf::kRev);
  std::string end = storage::RevKey(view.revision + 1, 0);
  int64_t last_rev = 0;
  for (it->Seek(storage::RevKey(from, 0)); it->Valid(); it->Next()) {
    std::string_view k = it->key().ToStringView();
    if (k >= end) break;
    int64_t rev = static_cast<int64_t>(base::GetBE64(k));
    // Never split a revision: stop only at a revision boundary.
    if (rev != last_rev && events->size() >= max_events) break;
    last_rev = rev;
    *next = rev + 1;
    std::string_view v = it->value().ToStringView();
    mvccpb::Event ev;
    CAIRN_CHECK(v.size() > 1 && ev.mutable_kv()->ParseFromArray(v.data() + 1, v.size() - 1))
        << "corrupt rev record";
    const std::string ek = ev.kv().key();
    bool in = range_end.empty() ? ek == key : (ek >= key && !PastEnd(ek, range_end));
    if (!in) continue;
    const bool put = v[0] != kKindDelete;
    if (v[0] == kKindLive) {
      src.ReadHistory(rev, static_cast<int64_t>(base::GetBE64(k.substr(8))), ev.mutable_kv());
    }
    ev.set_type(put ? mvccpb::Event::PUT : mvccpb::Event::DELETE);
    bool create = put && ev.kv().create_revision() == ev.kv().mod_revision();
    if (with_prev_kv && !create) {
      src.ScanHistory(ek, "", rev - 1, [&](int64_t main, int64_t sub) {
        src.ReadHistory(main, sub, ev.mutable_prev_kv());
      });
    }
    events->push_back(std::move(ev));
  }
  CAIRN_CHECK(it->status().ok()) << it->status().ToString();
  if (!it->Valid() || it->key().ToStringView() >= end) *next = view.revision + 1;
  return absl::OkStatus();
}

ApplyResult KvStore::ApplyPut(TxnWriter& w, const etcdserverpb::PutRequest& p) {
  ApplyResult res;
  auto& resp = res.put;
  resp.mutable_header();
  std::string value = p.value();
  int64_t lease = p.lease();
  std::optional<KeyValue> prev;
  if (p.ignore_value() || p.ignore_lease() || p.prev_kv()) prev = w.GetLatest(p.key());
  if ((p.ignore_value() || p.ignore_lease()) && !prev) {
    res.status = MakeError(ErrorKind::kKeyNotFound);
    return res;
  }
  if (p.ignore_value()) value = prev->value();
  if (p.ignore_lease()) lease = prev->lease();
  if (p.prev_kv() && prev) *resp.mutable_prev_kv() = *prev;
  w.Put(p.key(), value, lease);
  resp.mutable_header()->set_revision(w.begin_rev() + 1);
  return res;
}

// ---- applying committed entries ----

class KvStore::EntryBatch::Impl {
 public:
  Impl(KvStore* store, uint64_t index)
      : index(index),
        wb(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
        writer(store, &wb) {}
  uint64_t index;
  rocksdb::WriteBatchWithIndex wb;
  TxnWriter writer;
};

KvStore::EntryBatch::EntryBatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvStore::EntryBatch::~EntryBatch() = default;
uint64_t KvStore::EntryBatch::index() const { return impl_->index; }
rocksdb::WriteBatchBase* KvStore::EntryBatch::batch() { return &impl_->wb; }

std::unique_ptr<KvStore::EntryBatch> KvStore::Begin(uint64_t index) {
  FlushGroup();  // the group's entries come before this one
  CheckNotApplied(index);
  return std::unique_ptr<EntryBatch>(
      new EntryBatch(std::make_unique<EntryBatch::Impl>(this, index)));
}

ApplyResult KvStore::Put(EntryBatch& b, const etcdserverpb::PutRequest& p) {
  if (p.lease() != 0 && !LeaseExists(p.lease())) {
    ApplyResult res;
    res.status = MakeError(ErrorKind::kLeaseNotFound);
    return res;
  }
  b.impl_->writer.SkipReadIndex();
  return ApplyPut(b.impl_->writer, p);
}

etcdserverpb::DeleteRangeResponse KvStore::DoDeleteRange(
    TxnWriter& w, const etcdserverpb::DeleteRangeRequest& d) {
  etcdserverpb::DeleteRangeResponse resp;
  resp.mutable_header();
  const size_t first = w.events().size();
  int64_t n = w.DeleteRange(d.key(), d.range_end());
  if (d.prev_kv()) {
    // The deleted values are in the delete events already: no second scan.
    const std::vector<mvccpb::Event>& events = w.events();
    resp.mutable_prev_kvs()->Reserve(static_cast<int>(events.size() - first));
    for (size_t i = first; i < events.size(); ++i) *resp.add_prev_kvs() = events[i].prev_kv();
  }
  resp.set_deleted(n);
  resp.mutable_header()->set_revision(n != 0 || w.changes() > 0 ? w.begin_rev() + 1
                                                                : w.begin_rev());
  return resp;
}

ApplyResult KvStore::DeleteRange(EntryBatch& b, const etcdserverpb::DeleteRangeRequest& d) {
  ApplyResult res;
  b.impl_->writer.SkipReadIndex();
  res.delete_range = DoDeleteRange(b.impl_->writer, d);
  return res;
}

// Executes the chosen branches of a validated write txn (etcd's applyTxn). Validation makes a
// failure here impossible for every input we know of; should one still fail, the first error
// is returned, execution stops, and the entry writes nothing (Commit discards the batch).
absl::Status KvStore::RunTxn(TxnWriter& w, const TxnRequest& t, const std::vector<bool>& path,
                             size_t* pos, TxnResponse* out) {
  bool ok = path[(*pos)++];
  out->mutable_header();
  out->set_succeeded(ok);
  for (const RequestOp& op : ok ? t.success() : t.failure()) {
    auto* ro = out->add_responses();
    if (op.has_request_range()) {
      auto rr = DoRange(w.source(), w.read_rev(), compact_revision_, op.request_range());
      if (!rr.ok()) return rr.status();
      *ro->mutable_response_range() = std::move(*rr);
    } else if (op.has_request_put()) {
      ApplyResult pr = ApplyPut(w, op.request_put());
      if (!pr.status.ok()) return pr.status;
      *ro->mutable_response_put() = std::move(pr.put);
    } else if (op.has_request_delete_range()) {
      *ro->mutable_response_delete_range() = DoDeleteRange(w, op.request_delete_range());
    } else if (op.has_request_txn()) {
      absl::Status st = RunTxn(w, op.request_txn(), path, pos, ro->mutable_response_txn());
      if (!st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

ApplyResult KvStore::Txn(EntryBatch& b, const TxnRequest& t) {
  TxnWriter& w = b.impl_->writer;
  ApplyResult res;
  int64_t cur = revision_;
  std::vector<bool> path;
  CompareToPath(w.source(), cur, t, &path);
  size_t pos = 0;
  if (!IsTxnReadOnly(t)) {
    res.status = CheckRequests(t, path, &pos, [&](const RequestOp& op) -> absl::Status {
      if (!op.has_request_put()) return absl::OkStatus();
      const auto& p = op.request_put();
      if (p.ignore_value() || p.ignore_lease()) {
        if (!w.GetLatest(p.key())) return MakeError(ErrorKind::kKeyNotFound);
      }
      if (p.lease() != 0 && !LeaseExists(p.lease())) return MakeError(ErrorKind::kLeaseNotFound);
      return absl::OkStatus();
    });
    if (!res.status.ok()) return res;
  }
  pos = 0;
  res.status = CheckRequests(
      t, path, &pos, [&](const RequestOp& op) { return CheckRange(op, cur, compact_revision_); });
  if (!res.status.ok()) return res;
  pos = 0;
  absl::Status run = RunTxn(w, t, path, &pos, &res.txn);
  if (!run.ok()) {
    CAIRN_LOG(kWarn, "mvcc") << "txn failed while applying, nothing written: " << run;
    res.status = run;
    return res;
  }
  res.txn.mutable_header()->set_revision(w.changes() > 0 ? cur + 1 : cur);
  return res;
}

ApplyResult KvStore::Compact(EntryBatch& b, const etcdserverpb::CompactionRequest& c) {
  ApplyResult res;
  int64_t rev = c.revision();
  if (rev <= compact_revision_) {
    res.status = MakeError(ErrorKind::kCompacted);
  } else if (rev > revision_) {
    res.status = MakeError(ErrorKind::kFutureRev);
  } else {
    compact_revision_ = rev;
    PutMetaInt(&b.impl_->wb, backend_->cf(Cf::kMeta), "compact_revision", rev);
    res.compact_revision = rev;
  }
  res.compaction.mutable_header()->set_revision(revision_);
  return res;
}

ApplyResult KvStore::GrantLease(EntryBatch& b, const etcdserverpb::LeaseGrantRequest& g) {
  ApplyResult res;
  if (LeaseExists(g.id())) {
    res.status = MakeError(ErrorKind::kLeaseExist);
    return res;
  }
  leases_.insert(g.id());
  CAIRN_CHECK(
      b.impl_->wb.Put(backend_->cf(Cf::kLease), LeaseKey(g.id(), ""), LeaseValue(g.ttl(), 0)).ok());
  res.lease_grant.mutable_header()->set_revision(revision_);
  res.lease_grant.set_id(g.id());
  res.lease_grant.set_ttl(g.ttl());
  res.leases_granted.push_back(LeaseRecord{g.id(), g.ttl(), 0});
  return res;
}

ApplyResult KvStore::RevokeLease(EntryBatch& b, const etcdserverpb::LeaseRevokeRequest& r) {
  TxnWriter& w = b.impl_->writer;
  ApplyResult res;
  int64_t id = r.id();
  if (!LeaseExists(id)) {
    res.status = MakeError(ErrorKind::kLeaseNotFound);
    return res;
  }
  // Every attached key goes in this one revision, in key order (etcd's revoke).
  std::vector<std::string> keys;
  std::string prefix = LeaseKey(id, "");
  auto it = w.source().Iter(Cf::kLeaseKeys);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    keys.push_back(it->key().ToString().substr(8));
  }
  for (const std::string& k : keys) w.DeleteRange(k, "");
  leases_.erase(id);
  CAIRN_CHECK(b.impl_->wb.Delete(backend_->cf(Cf::kLease), prefix).ok());
  res.lease_revoke.mutable_header()->set_revision(w.read_rev());
  res.leases_revoked.push_back(id);
  return res;
}

ApplyResult KvStore::CheckpointLeases(EntryBatch& b,
                                      const etcdserverpb::LeaseCheckpointRequest& r) {
  ApplyResult res;
  for (const auto& cp : r.checkpoints()) {
    if (!LeaseExists(cp.id())) continue;
    std::string value;
    if (!b.impl_->writer.source().Get(Cf::kLease, LeaseKey(cp.id(), ""), &value)) continue;
    int64_t ttl = static_cast<int64_t>(base::GetBE64(value));
    CAIRN_CHECK(b.impl_->wb
                    .Put(backend_->cf(Cf::kLease), LeaseKey(cp.id(), ""),
                         LeaseValue(ttl, cp.remaining_ttl()))
                    .ok());
    res.leases_checkpointed.push_back(LeaseRecord{cp.id(), ttl, cp.remaining_ttl()});
  }
  return res;
}

void KvStore::CheckNotApplied(uint64_t index) const {
  CAIRN_CHECK(index > applied_index_)
      << "entry " << index << " applied twice (applied index " << applied_index_ << ")";
}

ApplyResult KvStore::PutGrouped(uint64_t index, const etcdserverpb::PutRequest& p) {
  CheckNotApplied(index);
  ApplyResult res;
  // The latest record goes through the group's index, so a later entry of the same key in the
  // group reads it; history is never read inside the group (a put reads only `latest`).
  TxnWriter w(this, &group_);
  if (p.lease() != 0 && !LeaseExists(p.lease())) {
    res.status = MakeError(ErrorKind::kLeaseNotFound);
  } else {
    res = ApplyPut(w, p);
  }
  EndGrouped(index, w, &res);
  return res;
}

ApplyResult KvStore::DeleteGrouped(uint64_t index, const etcdserverpb::DeleteRangeRequest& d) {
  CAIRN_CHECK(IsGroupable(d)) << "a DeleteRange of a range needs a batch of its own";
  CheckNotApplied(index);
  ApplyResult res;
  // One key: its `latest` tombstone goes through the group's index (a later entry of the group
  // finds the key gone); its history records, as always, only into the batch.
  TxnWriter w(this, &group_);
  res.delete_range = DoDeleteRange(w, d);
  EndGrouped(index, w, &res);
  return res;
}

void KvStore::EndGrouped(uint64_t index, TxnWriter& w, ApplyResult* res) {
  if (res->status.ok() && w.changes() > 0) {
    revision_ = w.begin_rev() + 1;
    res->revision = revision_;
    res->events = std::move(w.events());
  }
  applied_index_ = index;
  group_dirty_ = true;
  if (group_.GetWriteBatch()->GetDataSize() >= internal::kMaxGroupBytes) FlushGroup();
}

void KvStore::FlushGroup() {
  if (!group_dirty_) return;
  PutMetaInt(&group_, backend_->cf(Cf::kMeta), "revision", revision_);
  PutMetaInt(&group_, backend_->cf(Cf::kMeta), "applied_index",
             static_cast<int64_t>(applied_index_));
  backend_->Write(group_.GetWriteBatch());
  group_.Clear();
  group_dirty_ = false;
}

void KvStore::Commit(EntryBatch& b, ApplyResult* res) {
  rocksdb::WriteBatchWithIndex& wb = b.impl_->wb;
  TxnWriter& w = b.impl_->writer;
  if (!res->status.ok()) {
    // No partial writes: an entry that fails changes nothing but the applied index.
    wb.Clear();
  } else if (w.changes() > 0) {
    revision_ = w.begin_rev() + 1;
    PutMetaInt(&wb, backend_->cf(Cf::kMeta), "revision", revision_);
    res->revision = revision_;
    res->events = std::move(w.events());
  }
  PutMetaInt(&wb, backend_->cf(Cf::kMeta), "applied_index", static_cast<int64_t>(b.index()));
  backend_->Write(wb.GetWriteBatch());
  applied_index_ = b.index();
  if (res->status.ok() && res->compact_revision > 0) StartCompaction(compact_revision_);
}

}  // namespace cairn::mvcc
