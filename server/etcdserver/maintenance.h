// Maintenance over a member's store: the Hash / HashKV definitions, online defragmentation and
// the client snapshot stream format (docs/maintenance.md is the contract).
//
// Thread contract: every function may run on any thread concurrently with the applier; each reads
// only at the RocksDB snapshot of the view it is given (hold the ReadView until it returns), so
// none of them blocks writes. MaintenanceWorker is thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/base/env.h"
#include "server/mvcc/kv_store.h"
#include "server/storage/backend.h"

namespace cairn::etcdserver {

// Hash: the CRC-32C of the state-machine dump (docs/snapshot_format.md) of `view`.
absl::StatusOr<uint32_t> HashBackend(storage::Backend* backend, const mvcc::ReadView& view);

struct HashKvResult {
  uint32_t hash = 0;
  int64_t revision = 0;          // the revision hashed (the current one for 0)
  int64_t compact_revision = 0;  // the store's compact revision (-1: never compacted)
};
// HashKV at `revision` (0: the view's revision): equal on every member that has applied the same
// log up to `revision`, whatever its physical compaction progress (docs/maintenance.md).
// Errors: kCompacted below the compact revision, kFutureRev above the view's revision.
absl::StatusOr<HashKvResult> HashKv(storage::Backend* backend, const mvcc::ReadView& view,
                                    int64_t revision);

// The backend size the quota is checked against: the SST files of every family plus the data
// held in their memtables (RocksDB's estimate), not the memtables' preallocated arena blocks,
// which would count megabytes for a single small write.
int64_t QuotaSizeBytes(storage::Backend* backend);

// Defragment: RocksDB manual compaction of every family (bottommost level included), which drops
// deleted and overwritten data and returns the space to the file system. Online: reads and writes
// go on meanwhile.
absl::Status Defragment(storage::Backend* backend);

// The client snapshot stream (etcdctl snapshot save): the dump of `view`, zero padding up to a
// multiple of kSnapshotAlign bytes, then the SHA-256 of everything before it (32 bytes), so that
// etcd's check `size % 512 == 32` holds. `sink` gets chunks of at most `chunk_bytes` and the
// number of bytes remaining after each; returning false stops (kAborted).
inline constexpr size_t kSnapshotAlign = 512;
inline constexpr size_t kSnapshotHashBytes = 32;
absl::Status StreamClientSnapshot(
    storage::Backend* backend, const mvcc::ReadView& view, size_t chunk_bytes,
    const std::function<bool(std::string_view chunk, uint64_t remaining_bytes)>& sink);

// Checks a client snapshot file (length, SHA-256 trailer, then the dump inside) and returns the
// length of the dump at its start (docs/maintenance.md). kDataLoss with a clear message on any
// damage; kNotFound if missing.
absl::StatusOr<uint64_t> VerifyClientSnapshot(const std::string& path,
                                              base::Env* env = base::Env::Default());

// One thread running maintenance tasks (defragment, hashes) in order, off the gRPC and applier
// threads. A task gets `stopping` = true when it runs during or after Stop (it should then fail
// fast with "server stopped").
class MaintenanceWorker {
 public:
  MaintenanceWorker();
  ~MaintenanceWorker() { Stop(); }
  void Run(std::function<void(bool stopping)> task);
  // Runs what is queued (with stopping = true) and joins. Idempotent.
  void Stop();

 private:
  void Loop();
  absl::Mutex mu_;
  std::deque<std::function<void(bool)>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace cairn::etcdserver
