// KvStore's physical compaction (a background thread deleting history in bounded, paced batches)
// and its coordination with snapshot installs. The rest of KvStore is in kv_store.cc.
#include <algorithm>
#include <limits>
#include <set>

#include "absl/time/time.h"
#include "server/base/check.h"
#include "server/base/encoding.h"
#include "server/base/logging.h"
#include "server/base/metrics.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/kv_store_internal.h"
#include "server/storage/encoding.h"

namespace cairn::mvcc {

using internal::kCompactionBatchLimit;
using internal::kCompactionBatchPauseMs;
using internal::kKindPut;
using internal::PutMetaInt;
using mvccpb::KeyValue;
using storage::Cf;

void KvStore::StartCompaction(int64_t revision) {
  {
    absl::MutexLock l(&compact_mu_);
    compact_queue_.push_back(revision);
  }
  compact_cv_.SignalAll();
}

void KvStore::OnCompacted(int64_t revision, std::function<void(bool)> done) {
  bool closing;
  {
    absl::MutexLock l(&compact_mu_);
    if (finished_compact_revision_ < revision && !closing_) {
      compact_waiters_.emplace_back(revision, std::move(done));
      return;
    }
    closing = closing_;
  }
  done(!closing);
}

void KvStore::BeginInstall() {
  absl::MutexLock l(&compact_mu_);
  installing_ = true;
  install_requested_ = true;
  compact_queue_.clear();
  compact_cv_.SignalAll();  // cuts a running compaction's pause short
  // A running CompactRange writes to the live database: the install must not interleave with it
  // (it would delete installed history, or overwrite finished_compact_revision).
  while (compacting_) compact_cv_.Wait(&compact_mu_);
}

void KvStore::ReloadAfterInstall() {
  LoadFromBackend();
  std::vector<std::function<void(bool)>> satisfied;
  std::vector<std::function<void(bool)>> unreachable;
  {
    absl::MutexLock l(&compact_mu_);
    finished_compact_revision_ = backend_->ReadMetaInt("finished_compact_revision", 0);
    installing_ = false;
    install_requested_ = false;
    compact_queue_.clear();
    const int64_t finished = finished_compact_revision_;
    const int64_t compact = compact_revision_;
    auto keep = std::partition(compact_waiters_.begin(), compact_waiters_.end(),
                               [&](auto& w) { return w.first > finished && w.first <= compact; });
    for (auto i = keep; i != compact_waiters_.end(); ++i) {
      (i->first <= finished ? satisfied : unreachable).push_back(std::move(i->second));
    }
    compact_waiters_.erase(keep, compact_waiters_.end());
    if (compact > finished) compact_queue_.push_back(compact);
  }
  compact_cv_.SignalAll();
  Publish();
  CAIRN_LOG(kInfo, "mvcc") << "reloaded after snapshot install: revision=" << revision_
                           << " compact_revision=" << compact_revision_
                           << " applied_index=" << applied_index_;
  for (auto& done : satisfied) done(true);
  for (auto& done : unreachable) done(false);
}

void KvStore::CompactorLoop() {
  compact_mu_.Lock();
  while (true) {
    while (!closing_ && (installing_ || compact_queue_.empty())) compact_cv_.Wait(&compact_mu_);
    if (closing_) break;
    int64_t to = compact_queue_.front();
    compact_queue_.pop_front();
    int64_t from = finished_compact_revision_;
    if (to <= from) continue;
    compacting_ = true;
    compact_mu_.Unlock();
    bool finished = CompactRange(from, to);
    compact_mu_.Lock();
    compacting_ = false;
    compact_cv_.SignalAll();  // BeginInstall may be waiting for this
    if (!finished) continue;
    finished_compact_revision_ = to;
    std::vector<std::function<void(bool)>> ready;
    auto it = std::partition(compact_waiters_.begin(), compact_waiters_.end(),
                             [&](const auto& w) { return w.first > to; });
    for (auto i = it; i != compact_waiters_.end(); ++i) ready.push_back(std::move(i->second));
    compact_waiters_.erase(it, compact_waiters_.end());
    compact_mu_.Unlock();
    for (auto& done : ready) done(true);
    compact_mu_.Lock();
  }
  compact_mu_.Unlock();
}

bool KvStore::CompactRange(int64_t from, int64_t to) {
  rocksdb::DB* db = backend_->db();
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> rev_it(db->NewIterator(ro, backend_->cf(Cf::kRev)));
  std::string end = storage::RevKey(to + 1, 0);
  // From `from` itself (not from+1): a delete kept at the previous compact revision is revisited.
  rev_it->Seek(storage::RevKey(std::max<int64_t>(from, 1), 0));
  int batches = 0;
  int64_t scanned_total = 0, deleted_total = 0;
  double scan_s = 0, lookup_s = 0, write_s = 0, pause_s = 0;
  base::Stopwatch total;
  while (true) {
    if (install_requested_) {
      CAIRN_LOG(kInfo, "mvcc") << "physical compaction up to revision=" << to
                               << " interrupted by a snapshot install";
      return false;
    }
    // Collect a bounded chunk of keys changed in (from, to].
    base::Stopwatch phase;
    std::set<std::string> keys;
    int scanned = 0;
    for (; rev_it->Valid() && scanned < kCompactionBatchLimit; rev_it->Next(), ++scanned) {
      if (rev_it->key().ToStringView() >= end) break;
      KeyValue kv;
      std::string_view v = rev_it->value().ToStringView();
      CAIRN_CHECK(v.size() > 1 && kv.ParseFromArray(v.data() + 1, v.size() - 1));
      keys.insert(kv.key());
    }
    scanned_total += scanned;
    scan_s += phase.ElapsedSeconds();
    phase = base::Stopwatch();
    rocksdb::WriteBatch batch;
    for (const std::string& k : keys) {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, backend_->cf(Cf::kIndex)));
      std::string after = storage::IndexKeyAfter(k);
      it->Seek(storage::IndexKey(k, to));
      bool first = true;
      for (; it->Valid() && it->key().ToStringView() < after; it->Next()) {
        std::string_view ik = it->key().ToStringView();
        std::string_view v = it->value().ToStringView();
        int64_t main = static_cast<int64_t>(std::numeric_limits<uint64_t>::max() -
                                            base::GetBE64(ik.substr(ik.size() - 8)));
        // The newest revision <= `to` survives unless it is a delete; a delete exactly at `to`
        // survives too, so a watch starting at the compact revision still sees it.
        bool keep = first && (v[8] == kKindPut || main == to);
        first = false;
        if (keep) continue;
        batch.Delete(backend_->cf(Cf::kIndex), it->key());
        batch.Delete(backend_->cf(Cf::kRev),
                     storage::RevKey(main, static_cast<int64_t>(base::GetBE64(v))));
      }
    }
    bool done = !rev_it->Valid() || rev_it->key().ToStringView() >= end;
    deleted_total += batch.Count() / 2;
    lookup_s += phase.ElapsedSeconds();
    phase = base::Stopwatch();
    if (done) PutMetaInt(&batch, backend_->cf(Cf::kMeta), "finished_compact_revision", to);
    backend_->Write(&batch);
    write_s += phase.ElapsedSeconds();
    ++batches;
    if (compaction_batch_hook_) compaction_batch_hook_(batches);
    if (done) break;
    // The pause: a condition wait that closing or an install cuts short. A store that closes
    // leaves the rest to the next open (finished_compact_revision is not moved yet).
    base::Stopwatch pause;
    absl::MutexLock l(&compact_mu_);
    if (!closing_ && !install_requested_) {
      compact_cv_.WaitWithTimeout(&compact_mu_, absl::Milliseconds(kCompactionBatchPauseMs));
    }
    pause_s += pause.ElapsedSeconds();
    if (closing_) return false;
  }
  CAIRN_CHECK(rev_it->status().ok()) << rev_it->status().ToString();
  CAIRN_LOG(kInfo, "mvcc") << "compacted history up to revision=" << to << " in "
                           << total.ElapsedSeconds() << " s: batches=" << batches
                           << " scanned=" << scanned_total << " deleted=" << deleted_total
                           << " scan_s=" << scan_s << " lookup_s=" << lookup_s
                           << " write_s=" << write_s << " pause_s=" << pause_s;
  return true;
}

}  // namespace cairn::mvcc
