// Internals shared by the files of KvStore (kv_store.cc: reads and the apply path;
// kv_compactor.cc: physical compaction and snapshot install). Not part of the mvcc API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rocksdb/write_batch_base.h"
#include "server/base/check.h"
#include "server/base/encoding.h"

namespace cairn::mvcc::internal {

// The first byte of a history (rev) record's value: a put or a delete (docs/storage.md).
inline constexpr char kKindPut = 'p';
inline constexpr char kKindDelete = 'd';
// A live put: the record holds only KeyValue{key}; the value is in `latest` (docs/keyspace.md, "One
// copy of each value"). Its `index` kind is kKindPut.
inline constexpr char kKindLive = 'l';

// A `latest` record: 0x00, LEB128(sub), serialized KeyValue. A record without the 0x00 prefix is a
// bare KeyValue of the earlier layout (sub < 0), whose `rev` record holds the value as well.
struct LatestRecord {
  std::string_view kv;  // the serialized KeyValue
  int64_t sub = -1;     // the live put's sub-revision, or -1 for a bare record
};

// The prefix of a `latest` record (0x00, LEB128(sub)); the serialized KeyValue is appended to it.
inline std::string LatestPrefix(int64_t sub) {
  std::string out(1, '\0');
  auto v = static_cast<uint64_t>(sub);
  while (v >= 0x80) {
    out.push_back(static_cast<char>(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

inline std::string EncodeLatest(int64_t sub, std::string_view kv) {
  std::string out = LatestPrefix(sub);
  out.append(kv.data(), kv.size());
  return out;
}

inline LatestRecord DecodeLatest(std::string_view v) {
  if (v.empty() || v[0] != '\0') return LatestRecord{v, -1};
  uint64_t sub = 0;
  size_t i = 1;
  for (int shift = 0; shift < 64; shift += 7, ++i) {
    CAIRN_CHECK(i < v.size()) << "corrupt latest record";
    const auto b = static_cast<uint8_t>(v[i]);
    sub |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return LatestRecord{v.substr(i + 1), static_cast<int64_t>(sub)};
  }
  CAIRN_CHECK(false) << "corrupt latest record";
  return {};
}

// Physical compaction examines at most this many history (rev) records per RocksDB batch, so it
// never holds up the applier for long (etcd's --experimental-compaction-batch-limit, default 1000).
// A batch removes at most these records and, per key among them, one record older than the
// previous compaction.
inline constexpr int kCompactionBatchLimit = 1000;
// Physical compaction pauses this long between two batches, so a compaction of millions of
// revisions leaves the disk and the CPU to the applier in between (etcd's
// --experimental-compaction-sleep-interval, default 10 ms).
inline constexpr int kCompactionBatchPauseMs = 10;
// Physical compaction removes a run of at least this many consecutive history (rev) records with
// one range tombstone instead of a tombstone per record. Shorter runs are removed record by record,
// so a compaction writes at most kCompactionBatchLimit / kCompactionRangeDeleteMin range
// tombstones per batch (each costs RocksDB's readers of the family more than a point tombstone).
inline constexpr int kCompactionRangeDeleteMin = 16;
// A DeleteRange entry (not inside a txn) of at least this many live keys removes them from
// `latest` with one range tombstone over [first key, last key + 0x00) instead of one point
// tombstone per key. Fewer keys go key by key, so a family's readers meet at most one range
// tombstone per this many deleted keys.
inline constexpr size_t kDeleteRangeTombstoneMin = 1024;
// A DeleteRange of at least this many live keys first starts new memtables for `index` and `rev`
// (the old ones flush in the background): its history records then append to empty skiplists
// instead of each searching a full one, where they would land between existing records.
inline constexpr size_t kDeleteRangeFreshMemtableMin = 65536;
// Physical compaction remembers the newest revision at or below the compact revision of the keys
// it has looked up, until it passes that revision, in at most this many bytes (key bytes plus a
// fixed cost per entry); a key it cannot remember is looked up again in each batch that holds it.
inline constexpr size_t kCompactionKeyCacheBytes = 16 << 20;

// A group of PutGrouped entries is written as soon as its batch holds this many bytes, so a run
// of large puts never holds more than about this much (plus one entry) in memory before writing.
inline constexpr size_t kMaxGroupBytes = 4 << 20;

// etcd's mkGteRange: a range_end of "\0" means "every key >= key".
inline bool IsFromKey(const std::string& end) { return end.size() == 1 && end[0] == '\0'; }

// [key, end) membership for a scan: end empty = single key (handled by callers), "\0" = no bound.
inline bool PastEnd(std::string_view k, const std::string& end) {
  if (IsFromKey(end)) return false;
  return std::string_view(k) >= std::string_view(end);
}

// A `lease_keys` key (or, with an empty key, a `lease` key): BE64(lease) + key.
inline std::string LeaseKey(int64_t lease, std::string_view key) {
  std::string out;
  base::PutBE64(&out, static_cast<uint64_t>(lease));
  out.append(key.data(), key.size());
  return out;
}

// Writes a meta integer (big-endian) into `wb`.
inline void PutMetaInt(rocksdb::WriteBatchBase* wb, rocksdb::ColumnFamilyHandle* cf,
                       const char* name, int64_t v) {
  std::string value;
  base::PutBE64(&value, static_cast<uint64_t>(v));
  CAIRN_CHECK(wb->Put(cf, name, value).ok());
}

}  // namespace cairn::mvcc::internal
