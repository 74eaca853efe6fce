// KvStore's physical compaction (a background thread deleting history in bounded, paced batches)
// and its coordination with snapshot installs. The rest of KvStore is in kv_store.cc.
#include <algorithm>
#include <limits>
#include <map>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/io/coded_stream.h"
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
using internal::kCompactionKeyCacheBytes;
using internal::kCompactionRangeDeleteMin;
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
  CAIRN_CHECK(!group_dirty_) << "snapshot install over unwritten grouped puts";
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
  range_counts_.Clear();
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

namespace {

// One history record of the `rev` family, as the compactor needs it.
struct HistoryEntry {
  int64_t main = 0;
  int64_t sub = 0;
  std::string key;  // the user key
};

// The newest revision <= the compact revision of one user key (its `index` record).
struct Newest {
  int64_t main = 0;
  bool put = false;
};

// What one entry of the compactor's map of keys costs beyond the key's bytes (hash node, string,
// bucket), for kCompactionKeyCacheBytes.
constexpr size_t kKnownEntryBytes = 96;

int64_t MainOfIndexKey(std::string_view ik) {
  return static_cast<int64_t>(std::numeric_limits<uint64_t>::max() -
                              base::GetBE64(ik.substr(ik.size() - 8)));
}

// The user key of a rev record's value (kind byte + serialized KeyValue). KeyValue's `key` is
// field 1, which a serializer writes first; anything else falls back to a full parse.
std::string KeyOfRevValue(std::string_view v) {
  CAIRN_CHECK(v.size() > 1) << "corrupt rev record";
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(v.data() + 1),
                                            static_cast<int>(v.size() - 1));
  uint32_t len = 0;
  std::string key;
  if (in.ReadTag() == ((1u << 3) | 2u) && in.ReadVarint32(&len) &&
      in.ReadString(&key, static_cast<int>(len))) {
    return key;
  }
  KeyValue kv;
  CAIRN_CHECK(kv.ParseFromArray(v.data() + 1, static_cast<int>(v.size() - 1)))
      << "corrupt rev record";
  return kv.key();
}

}  // namespace

bool KvStore::CompactRange(int64_t from, int64_t to) {
  rocksdb::DB* db = backend_->db();
  rocksdb::ColumnFamilyHandle* rev_cf = backend_->cf(Cf::kRev);
  rocksdb::ColumnFamilyHandle* index_cf = backend_->cf(Cf::kIndex);
  const std::string end = storage::RevKey(to + 1, 0);
  const rocksdb::Slice end_slice(end);
  // From `from` itself (not from+1): a delete kept at the previous compact revision is revisited.
  std::string resume = storage::RevKey(std::max<int64_t>(from, 1), 0);
  int batches = 0;
  int64_t scanned_total = 0, deleted_total = 0, ranges_total = 0;
  double scan_s = 0, lookup_s = 0, write_s = 0, pause_s = 0;
  base::Stopwatch total;
  std::vector<HistoryEntry> entries;
  // Each key's newest revision <= `to`, kept from the batch that looked it up until the walk
  // reaches that revision (no record of the key at or below `to` follows it), within
  // kCompactionKeyCacheBytes: a key with records in many batches costs one index seek, not one
  // per batch. Records at or below `to` are never added, and the newest one is removed only when
  // the walk reaches it, so an entry stays true for the whole compaction.
  std::unordered_map<std::string, Newest> known;
  size_t known_bytes = 0;
  int64_t seeks_total = 0;
  while (true) {
    if (install_requested_) {
      CAIRN_LOG(kInfo, "mvcc") << "physical compaction up to revision=" << to
                               << " interrupted by a snapshot install";
      return false;
    }
    // 1. The next chunk of history at or below `to`, in revision order. A fresh iterator per
    // batch: it pins no memtable or file across the pause, and it starts past the tombstones of
    // the batches before (`resume` is the first record not yet looked at).
    base::Stopwatch phase;
    entries.clear();
    bool done = false;
    {
      rocksdb::ReadOptions ro;
      ro.iterate_upper_bound = &end_slice;
      ro.fill_cache = false;  // old history, read once: leave the block cache to the readers
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, rev_cf));
      for (it->Seek(resume); it->Valid() && entries.size() < kCompactionBatchLimit; it->Next()) {
        std::string_view rk = it->key().ToStringView();
        CAIRN_CHECK(rk.size() == 16) << "corrupt rev key";
        entries.push_back(HistoryEntry{static_cast<int64_t>(base::GetBE64(rk)),
                                       static_cast<int64_t>(base::GetBE64(rk.substr(8))),
                                       KeyOfRevValue(it->value().ToStringView())});
      }
      CAIRN_CHECK(it->status().ok()) << it->status().ToString();
      done = !it->Valid();
      if (!done) resume = it->key().ToString();
    }
    scanned_total += static_cast<int64_t>(entries.size());
    scan_s += phase.ElapsedSeconds();
    phase = base::Stopwatch();

    // 2. For each key of the chunk not in `known`, its newest revision <= `to`: one seek in
    // `index` (keys in order, so the seeks move forward through one iterator).
    std::map<std::string_view, Newest> newest;
    for (const HistoryEntry& e : entries) {
      if (known.count(e.key) == 0) newest.emplace(e.key, Newest{});
    }
    rocksdb::WriteBatch batch;
    {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), index_cf));
      for (auto& [key, n] : newest) {
        std::string target = storage::IndexKey(key, to);
        it->Seek(target);
        std::string_view esc(target.data(), target.size() - 8);
        // The record of the chunk is in `index` too, so a revision <= `to` of the key exists.
        CAIRN_CHECK(it->Valid() && it->key().size() == target.size() && it->key().starts_with(esc))
            << "history of a key missing from the index: " << it->status().ToString();
        std::string_view v = it->value().ToStringView();
        CAIRN_CHECK(v.size() == 9) << "corrupt index value";
        n.main = MainOfIndexKey(it->key().ToStringView());
        n.put = v[8] == kKindPut;
        ++seeks_total;
        if (known_bytes + key.size() + kKnownEntryBytes <= kCompactionKeyCacheBytes) {
          known.emplace(key, n);
          known_bytes += key.size() + kKnownEntryBytes;
        }
      }
      CAIRN_CHECK(it->status().ok()) << it->status().ToString();

      // 3. The deletes. A record survives only as its key's newest revision <= `to`, and then
      // only when it is a put, or a delete exactly at `to` (a watch starting at the compact
      // revision still sees it). Every version of a key below `from` was removed by the
      // compactions before, except that key's newest at `from` (at most one, outside the scan
      // when it is below `from`): it goes when its key has a newer version <= `to`.
      size_t run_begin = 0;  // entries[run_begin, i) are removed and not yet written to `batch`
      auto flush_run = [&](size_t run_end) {
        if (run_end - run_begin >= static_cast<size_t>(kCompactionRangeDeleteMin)) {
          // No record lies between two records of the chunk: one range tombstone covers them.
          std::string last = storage::RevKey(entries[run_end - 1].main, entries[run_end - 1].sub);
          last.push_back('\0');  // the smallest key after the last record of the run
          CAIRN_CHECK(
              batch
                  .DeleteRange(rev_cf,
                               storage::RevKey(entries[run_begin].main, entries[run_begin].sub),
                               last)
                  .ok());
          ++ranges_total;
        } else {
          for (size_t k = run_begin; k < run_end; ++k) {
            CAIRN_CHECK(
                batch.Delete(rev_cf, storage::RevKey(entries[k].main, entries[k].sub)).ok());
          }
        }
      };
      for (size_t i = 0; i < entries.size(); ++i) {
        const HistoryEntry& e = entries[i];
        auto k = known.find(e.key);
        const Newest n = k != known.end() ? k->second : newest.at(e.key);
        bool is_newest = e.main == n.main;
        if (is_newest && k != known.end()) {
          known.erase(k);  // no record of the key at or below `to` follows
          known_bytes -= e.key.size() + kKnownEntryBytes;
        }
        if (is_newest && n.main > from && from > 0) {
          // The key's version below `from`, if it has one: the newest <= from - 1.
          std::string target = storage::IndexKey(e.key, from - 1);
          it->Seek(target);
          std::string_view esc(target.data(), target.size() - 8);
          if (it->Valid() && it->key().size() == target.size() && it->key().starts_with(esc)) {
            std::string_view v = it->value().ToStringView();
            CAIRN_CHECK(v.size() == 9) << "corrupt index value";
            int64_t main = MainOfIndexKey(it->key().ToStringView());
            CAIRN_CHECK(batch.Delete(index_cf, it->key()).ok());
            CAIRN_CHECK(
                batch.Delete(rev_cf, storage::RevKey(main, static_cast<int64_t>(base::GetBE64(v))))
                    .ok());
            ++deleted_total;
          }
          CAIRN_CHECK(it->status().ok()) << it->status().ToString();
        }
        if (is_newest && (n.put || e.main == to)) {
          flush_run(i);
          run_begin = i + 1;
          continue;
        }
        CAIRN_CHECK(batch.Delete(index_cf, storage::IndexKey(e.key, e.main)).ok());
        ++deleted_total;
      }
      flush_run(entries.size());
    }
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
  CAIRN_LOG(kInfo, "mvcc") << "compacted history up to revision=" << to << " in "
                           << total.ElapsedSeconds() << " s: batches=" << batches
                           << " scanned=" << scanned_total << " deleted=" << deleted_total
                           << " rev_ranges=" << ranges_total << " index_seeks=" << seeks_total
                           << " scan_s=" << scan_s << " lookup_s=" << lookup_s
                           << " write_s=" << write_s << " pause_s=" << pause_s;
  return true;
}

}  // namespace cairn::mvcc
