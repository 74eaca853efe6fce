// KvStore::TxnWriter: how one write transaction changes the families (docs/keyspace.md). Internal
// to kv_store.cc.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rocksdb/utilities/write_batch_with_index.h"
#include "server/base/check.h"
#include "server/base/encoding.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/kv_store_internal.h"
#include "server/mvcc/kv_store_source.h"
#include "server/storage/encoding.h"

namespace cairn::mvcc {

using internal::DecodeLatest;
using internal::kKindDelete;
using internal::kKindLive;
using internal::kKindPut;
using internal::LatestRecord;
using internal::LeaseKey;
using mvccpb::KeyValue;
using storage::Cf;

// One write transaction (etcd's storeTxnWrite): every change gets revision (begin_rev + 1, sub).
class KvStore::TxnWriter {
 public:
  TxnWriter(KvStore* store, rocksdb::WriteBatchWithIndex* wb)
      : store_(store), wb_(wb), src_(store->backend_, wb), begin_rev_(store->revision_) {}

  const Source& source() const { return src_; }
  // The entry is one Put or one DeleteRange, which reads only before it writes: its writes skip
  // the batch's read index too (nothing inside the entry reads them back; they are still in the
  // one atomic batch). A large DeleteRange then indexes nothing.
  void SkipReadIndex() { out_ = wb_->GetWriteBatch(); }
  int64_t begin_rev() const { return begin_rev_; }
  int64_t changes() const { return changes_; }
  // The revision a read inside this txn sees (etcd: beginRev, +1 once something changed).
  int64_t read_rev() const { return changes_ > 0 ? begin_rev_ + 1 : begin_rev_; }

  std::optional<KeyValue> GetLatest(const std::string& key) const {
    std::string value;
    if (!src_.Get(Cf::kLatest, key, &value)) return std::nullopt;
    return ParseLatest(DecodeLatest(value));
  }

  std::vector<mvccpb::Event>& events() { return events_; }

  void Put(const std::string& key, const std::string& value, int64_t lease) {
    int64_t rev = begin_rev_ + 1;
    mvccpb::Event ev;
    ev.set_type(mvccpb::Event::PUT);
    KeyValue kv;
    kv.set_key(key);
    kv.set_value(value);
    kv.set_lease(lease);
    kv.set_mod_revision(rev);
    std::string prev_value;
    if (src_.Get(Cf::kLatest, key, &prev_value)) {
      const LatestRecord rec = DecodeLatest(prev_value);
      KeyValue prev = ParseLatest(rec);
      Retire(prev.mod_revision(), rec);
      kv.set_create_revision(prev.create_revision());
      kv.set_version(prev.version() + 1);
      if (prev.lease() != 0 && prev.lease() != lease) {
        CAIRN_CHECK(out_->Delete(Cf(Cf::kLeaseKeys), LeaseKey(prev.lease(), key)).ok());
      }
      *ev.mutable_prev_kv() = std::move(prev);
    } else {
      kv.set_create_revision(rev);
      kv.set_version(1);
    }
    if (lease != 0) CAIRN_CHECK(out_->Put(Cf(Cf::kLeaseKeys), LeaseKey(lease, key), "").ok());
    KeyValue marker;
    marker.set_key(key);
    const int64_t sub = Record(key, kKindLive, marker.SerializeAsString());
    std::string record = internal::LatestPrefix(sub);
    CAIRN_CHECK(kv.AppendToString(&record));  // serialized once, straight after the prefix
    CAIRN_CHECK(out_->Put(Cf(Cf::kLatest), key, record).ok());
    *ev.mutable_kv() = std::move(kv);
    events_.push_back(std::move(ev));
  }

  // Deletes every live key of [key, end); returns how many.
  int64_t DeleteRange(const std::string& key, const std::string& end) {
    std::vector<KeyValue> prevs;
    std::vector<int64_t> subs;  // each prev's sub-revision (-1: a bare latest record)
    src_.ScanLatest(key, end, [&](const LatestRecord& rec) {
      prevs.push_back(ParseLatest(rec));
      subs.push_back(rec.sub);
    });
    if (prevs.size() >= internal::kDeleteRangeFreshMemtableMin) {
      store_->backend_->SwitchMemtables({Cf::kIndex, Cf::kRev});
    }
    // The markers' full records first, then the tombstones: each is then a run of ascending `rev`
    // keys, which the memtable's skiplist appends after the one before. Interleaved, every
    // insert searched the skiplist from the top: a 400k-key delete took 1.4x as long.
    // The markers go in revision order too: keys are scanned in key order, which is not the
    // order they were written in.
    std::vector<std::pair<int64_t, int64_t>> order;  // (mod_revision, i) of each marker
    order.reserve(prevs.size());
    for (size_t i = 0; i < prevs.size(); ++i) {
      if (subs[i] >= 0) order.emplace_back(prevs[i].mod_revision(), static_cast<int64_t>(i));
    }
    std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : subs[a.second] < subs[b.second];
    });
    for (const auto& [main, i] : order) {
      // protobuf serializes these fields canonically: the bytes are those of the latest record.
      const std::string bytes = prevs[i].SerializeAsString();
      Retire(main, LatestRecord{bytes, subs[i]});
    }
    // Outside a txn nothing reads `latest` through the batch after this: a large range can go as
    // one range tombstone, which the batch's index could not have answered.
    const bool one_tombstone = out_ != wb_ && prevs.size() >= internal::kDeleteRangeTombstoneMin;
    if (one_tombstone) {
      CAIRN_CHECK(out_->DeleteRange(Cf(Cf::kLatest), prevs.front().key(),
                                    prevs.back().key() + std::string(1, '\0'))
                      .ok());
    }
    events_.reserve(events_.size() + prevs.size());
    for (size_t i = 0; i < prevs.size(); ++i) {
      KeyValue& prev = prevs[i];
      mvccpb::Event ev;
      ev.set_type(mvccpb::Event::DELETE);
      KeyValue* tomb = ev.mutable_kv();
      tomb->set_key(prev.key());
      tomb->set_mod_revision(begin_rev_ + 1);
      Record(prev.key(), kKindDelete, tomb->SerializeAsString());
      if (!one_tombstone) CAIRN_CHECK(out_->Delete(Cf(Cf::kLatest), prev.key()).ok());
      if (prev.lease() != 0) {
        CAIRN_CHECK(out_->Delete(Cf(Cf::kLeaseKeys), LeaseKey(prev.lease(), prev.key())).ok());
      }
      *ev.mutable_prev_kv() = std::move(prev);
      events_.push_back(std::move(ev));
    }
    return static_cast<int64_t>(prevs.size());
  }

 private:
  rocksdb::ColumnFamilyHandle* Cf(storage::Cf which) { return store_->backend_->cf(which); }

  static KeyValue ParseLatest(const LatestRecord& rec) {
    KeyValue kv;
    CAIRN_CHECK(kv.ParseFromArray(rec.kv.data(), static_cast<int>(rec.kv.size())))
        << "corrupt latest record";
    return kv;
  }

  // The key's live revision (main, rec.sub) is being superseded: its `rev` marker becomes the full
  // record (docs/keyspace.md, "One copy of each value"). A bare latest record's history is full.
  void Retire(int64_t main, const LatestRecord& rec) {
    if (rec.sub < 0) return;
    std::string full(1, kKindPut);
    full.append(rec.kv.data(), rec.kv.size());
    CAIRN_CHECK(wb_->GetWriteBatch()
                    ->Put(Cf(storage::Cf::kRev), storage::RevKey(main, rec.sub), full)
                    .ok());
  }

  // Writes the history records of one change. They go to the batch's underlying WriteBatch, not
  // through the batch's index: no read inside the entry can see them (history is read only at
  // revisions <= begin_rev_, and these are at begin_rev_ + 1; docs/keyspace.md, "Atomicity"), so
  // indexing them would only cost time (two thirds of a large DeleteRange's index inserts).
  // Returns the change's sub-revision.
  int64_t Record(const std::string& key, char kind, const std::string& kv) {
    int64_t rev = begin_rev_ + 1;
    int64_t sub = changes_++;
    std::string index_value;
    base::PutBE64(&index_value, static_cast<uint64_t>(sub));
    index_value.push_back(kind == kKindDelete ? kKindDelete : kKindPut);  // a live put is a put
    rocksdb::WriteBatch* history = wb_->GetWriteBatch();
    CAIRN_CHECK(
        history->Put(Cf(storage::Cf::kIndex), storage::IndexKey(key, rev), index_value).ok());
    std::string rev_value(1, kind);
    rev_value += kv;
    CAIRN_CHECK(history->Put(Cf(storage::Cf::kRev), storage::RevKey(rev, sub), rev_value).ok());
    return sub;
  }

  KvStore* store_;
  rocksdb::WriteBatchWithIndex* wb_;
  rocksdb::WriteBatchBase* out_ = wb_;  // where latest and lease_keys changes go
  Source src_;
  int64_t begin_rev_;
  int64_t changes_ = 0;
  std::vector<mvccpb::Event> events_;
};

}  // namespace cairn::mvcc
