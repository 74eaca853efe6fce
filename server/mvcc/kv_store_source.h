// KvStore::Source: how the store reads its families, from a published snapshot or from the
// database plus the batch of the entry being applied. Internal to kv_store.cc.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rocksdb/utilities/write_batch_with_index.h"
#include "server/base/check.h"
#include "server/base/encoding.h"
#include "server/base/errors.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/kv_store_internal.h"
#include "server/storage/encoding.h"

namespace cairn::mvcc {

using base::ErrorKind;
using base::MakeError;
using internal::DecodeLatest;
using internal::IsFromKey;
using internal::kKindPut;
using internal::LatestRecord;
using internal::PastEnd;
using mvccpb::KeyValue;
using storage::Cf;

namespace internal {
// What KvStore::Source::RangeKeys found.
struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t count = 0;
  int64_t rev = 0;
};
}  // namespace internal
using internal::RangeResult;

// Reads either a published snapshot or the database plus the batch of the entry being applied
// (so a transaction reads its own writes, as etcd's do).
class KvStore::Source {
 public:
  Source(storage::Backend* b, const rocksdb::Snapshot* snapshot) : b_(b) {
    ro_.snapshot = snapshot;
  }
  Source(storage::Backend* b, rocksdb::WriteBatchWithIndex* wb) : b_(b), wb_(wb) {}

  bool Get(Cf cf, const std::string& key, std::string* value) const {
    rocksdb::Status s = wb_ ? wb_->GetFromBatchAndDB(b_->db(), ro_, b_->cf(cf), key, value)
                            : b_->db()->Get(ro_, b_->cf(cf), key, value);
    if (s.IsNotFound()) return false;
    CAIRN_CHECK(s.ok()) << "rocksdb get: " << s.ToString();
    return true;
  }

  std::unique_ptr<rocksdb::Iterator> Iter(Cf cf) const {
    rocksdb::Iterator* base = b_->db()->NewIterator(ro_, b_->cf(cf));
    if (!wb_) return std::unique_ptr<rocksdb::Iterator>(base);
    return std::unique_ptr<rocksdb::Iterator>(wb_->NewIteratorWithBase(b_->cf(cf), base));
  }

  // etcd's rangeKeys: the KVs of [key, end) at revision `req_rev` (<= 0: cur_rev), at most
  // `limit` materialized (<= 0: all), and the total count. With `known_count` (the range's count
  // at that revision, from RangeCountCache) the walk stops after the `limit` keys it returns.
  absl::StatusOr<RangeResult> RangeKeys(const std::string& key, const std::string& end,
                                        int64_t cur_rev, int64_t compact_rev, int64_t req_rev,
                                        int64_t limit, bool count_only,
                                        std::optional<int64_t> known_count = std::nullopt) const {
    RangeResult out;
    out.rev = cur_rev;
    int64_t rev = req_rev;
    if (rev > cur_rev) return MakeError(ErrorKind::kFutureRev);
    if (rev <= 0) rev = cur_rev;
    if (rev < compact_rev) return MakeError(ErrorKind::kCompacted);
    auto want = [&]() { return !count_only && (limit <= 0 || out.count < limit); };
    // Whether to go on walking: always, unless the count is known and the page is full.
    auto more = [&]() { return !known_count || want(); };
    if (rev == cur_rev) {
      ScanLatest(key, end, [&](const LatestRecord& rec) {
        if (want()) {
          out.kvs.emplace_back();
          CAIRN_CHECK(out.kvs.back().ParseFromArray(rec.kv.data(), static_cast<int>(rec.kv.size())))
              << "corrupt latest record";
        }
        ++out.count;
        return more();
      });
    } else {
      ScanHistory(key, end, rev, [&](int64_t main, int64_t sub) {
        if (want()) {
          out.kvs.emplace_back();
          ReadHistory(main, sub, &out.kvs.back());
        }
        ++out.count;
        return more();
      });
    }
    if (known_count) out.count = *known_count;
    return out;
  }

  // Calls fn(LatestRecord) for each live key of [key, end) in key order (the record's view is
  // valid during the call only), until an fn returning bool returns false.
  template <typename Fn>
  void ScanLatest(const std::string& key, const std::string& end, Fn fn) const {
    if (end.empty()) {
      std::string value;
      if (Get(Cf::kLatest, key, &value)) Continue(fn, DecodeLatest(value));
      return;
    }
    if (!IsFromKey(end) && end <= key) return;
    auto it = Iter(Cf::kLatest);
    for (it->Seek(key); it->Valid(); it->Next()) {
      if (PastEnd(it->key().ToStringView(), end)) break;
      if (!Continue(fn, DecodeLatest(it->value().ToStringView()))) break;
    }
    CAIRN_CHECK(it->status().ok()) << it->status().ToString();
  }

  // The KeyValue of history record (main, sub), which must exist; returns its kind. Reads the
  // database, never the batch (docs/keyspace.md, "One copy of each value").
  char ReadHistory(int64_t main, int64_t sub, KeyValue* kv) const {
    std::string record;
    absl::Status s = ReadHistoryRecord(b_, ro_, main, sub, &record);
    CAIRN_CHECK(s.ok()) << "history record " << main << "." << sub << ": " << s;
    CAIRN_CHECK(record.size() > 1 &&
                kv->ParseFromArray(record.data() + 1, static_cast<int>(record.size() - 1)))
        << "corrupt rev record";
    return record[0];
  }

  // Calls fn(main, sub) for the newest put revision <= rev of each key of [key, end) alive at rev,
  // until an fn returning bool returns false.
  template <typename Fn>
  void ScanHistory(const std::string& key, const std::string& end, int64_t rev, Fn fn) const {
    if (!end.empty() && !IsFromKey(end) && end <= key) return;
    auto it = Iter(Cf::kIndex);
    std::string user_key;
    it->Seek(storage::IndexKey(key, rev));
    while (it->Valid()) {
      std::string_view ik = it->key().ToStringView();
      size_t consumed = 0;
      CAIRN_CHECK(storage::ParseEscaped(ik, &user_key, &consumed) && ik.size() == consumed + 8)
          << "corrupt index key";
      if (end.empty() ? user_key != key : PastEnd(user_key, end)) break;
      int64_t main = static_cast<int64_t>(std::numeric_limits<uint64_t>::max() -
                                          base::GetBE64(ik.substr(consumed)));
      if (main > rev) {
        it->Seek(storage::IndexKey(user_key, rev));
        continue;
      }
      std::string_view v = it->value().ToStringView();
      CAIRN_CHECK(v.size() == 9) << "corrupt index value";
      if (v[8] == kKindPut && !Continue(fn, main, static_cast<int64_t>(base::GetBE64(v)))) break;
      if (end.empty()) break;
      it->Seek(storage::IndexKeyAfter(user_key));
    }
    CAIRN_CHECK(it->status().ok()) << it->status().ToString();
  }

 private:
  // Calls fn(args...): false when fn returns bool and returned false.
  template <typename Fn, typename... Args>
  static bool Continue(Fn& fn, Args&&... args) {
    if constexpr (std::is_same_v<std::invoke_result_t<Fn&, Args...>, bool>) {
      return fn(std::forward<Args>(args)...);
    } else {
      fn(std::forward<Args>(args)...);
      return true;
    }
  }

  storage::Backend* b_;
  rocksdb::WriteBatchWithIndex* wb_ = nullptr;
  rocksdb::ReadOptions ro_;
};

}  // namespace cairn::mvcc
