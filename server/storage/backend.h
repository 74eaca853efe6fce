// Backend: the member's RocksDB database with the column families of docs/keyspace.md.
//
// Thread-safe (RocksDB is). Writes are unsynced; Sync() makes every earlier write durable with one
// fsync of RocksDB's WAL, which is how concurrent writes share fsyncs (group commit). A failed
// write or sync is fatal to the process (ARCHITECTURE.md: never limp on with state of unknown
// durability), so those calls return nothing.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "rocksdb/utilities/write_batch_with_index.h"
#include "server/base/env.h"
#include "server/base/metrics.h"

namespace cairn::storage {

enum class Cf { kMeta = 0, kLatest = 1, kIndex = 2, kRev = 3, kLease = 4, kLeaseKeys = 5 };

// RocksDB's own WAL, over all families, before it flushes the families that hold its oldest file
// (docs/limits.md). A family written a little with every entry (`meta`) otherwise never fills its
// write buffer, so no WAL file could go: RocksDB's default (4x every write buffer, 1.75 GiB here)
// let 1.3 GB of WAL build up under a 10M-key load, all replayed by the next open (8 s).
inline constexpr uint64_t kMaxWalBytes = 128 << 20;
// RocksDB's WAL is written unsynced; the OS is asked to write it back every this many bytes, so
// Sync() (before a raft snapshot, on the raft thread) finds little left to write.
inline constexpr uint64_t kWalBytesPerSync = 1 << 20;

class Backend {
 public:
  // Opens (creating if missing) the database in `dir`. RocksDB does its own file I/O; `env`
  // (not owned, outlives the Backend) is where the snapshot files installed into this database
  // are read and synced (snapshot.h).
  static absl::StatusOr<std::unique_ptr<Backend>> Open(const std::string& dir,
                                                       base::Env* env = base::Env::Default());
  ~Backend();

  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(Cf which) { return handles_[static_cast<int>(which) + 1]; }

  // Applies `batch` atomically, unsynced. Aborts on failure.
  void Write(rocksdb::WriteBatch* batch);
  // Tests only: `hook` runs before every later Write (a crash test ends the process there).
  // Set it before the writers start.
  void SetBeforeWriteHookForTesting(std::function<void()> hook) { before_write_ = std::move(hook); }
  // Tests only: `hook` runs after every later Sync returns (the whole-member simulation keeps a
  // checkpoint of the synced state there). Set it before the writers start.
  void SetAfterSyncHookForTesting(std::function<void()> hook) { after_sync_ = std::move(hook); }
  // Every later Write's duration is observed in `h` (etcd_disk_backend_commit_duration_seconds:
  // cairn's commit is one unsynced batch per entry). Set it before the writers start.
  void SetCommitHistogram(base::Histogram* h) { commit_seconds_ = h; }
  // Starts new, empty memtables for `families` and flushes the old ones in the background (it
  // may wait for an earlier flush, as RocksDB does when the write buffers are full). A large
  // batch whose keys interleave with a full memtable's then inserts into an empty skiplist.
  // A failure only logs a warning: nothing depends on the switch.
  void SwitchMemtables(std::initializer_list<Cf> families);
  // fsyncs every write made so far. Aborts on failure.
  void Sync();
  // Reads a BE64 counter from `meta`; `missing` if absent.
  int64_t ReadMetaInt(const std::string& name, int64_t missing);
  std::string ReadMetaString(const std::string& name);
  // Approximate on-disk size of live data files, for Status.dbSize.
  int64_t SizeBytes();
  const std::string& dir() const { return dir_; }
  base::Env* env() const { return env_; }

 private:
  Backend() = default;
  std::string dir_;
  base::Env* env_ = nullptr;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, then Cf order
  std::function<void()> before_write_;
  std::function<void()> after_sync_;
  base::Histogram* commit_seconds_ = nullptr;
};

}  // namespace cairn::storage
