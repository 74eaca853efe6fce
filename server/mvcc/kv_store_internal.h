// Internals shared by the files of KvStore (kv_store.cc: reads and the apply path;
// kv_compactor.cc: physical compaction and snapshot install). Not part of the mvcc API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "rocksdb/write_batch_base.h"
#include "server/base/check.h"
#include "server/base/encoding.h"

namespace cairn::mvcc::internal {

// The first byte of a history (rev) record's value: a put or a delete (docs/storage.md).
inline constexpr char kKindPut = 'p';
inline constexpr char kKindDelete = 'd';

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
// Physical compaction remembers the newest revision at or below the compact revision of the keys
// it has looked up, until it passes that revision, in at most this many bytes (key bytes plus a
// fixed cost per entry); a key it cannot remember is looked up again in each batch that holds it.
inline constexpr size_t kCompactionKeyCacheBytes = 16 << 20;

// A group of PutGrouped entries is written as soon as its batch holds this many bytes, so a run
// of large puts never holds more than about this much (plus one entry) in memory before writing.
inline constexpr size_t kMaxGroupBytes = 4 << 20;

// Writes a meta integer (big-endian) into `wb`.
inline void PutMetaInt(rocksdb::WriteBatchBase* wb, rocksdb::ColumnFamilyHandle* cf,
                       const char* name, int64_t v) {
  std::string value;
  base::PutBE64(&value, static_cast<uint64_t>(v));
  CAIRN_CHECK(wb->Put(cf, name, value).ok());
}

}  // namespace cairn::mvcc::internal
