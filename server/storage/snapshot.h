// State-machine snapshots: a dump of every column family at one RocksDB snapshot, streamed to a
// follower, written to a file there, verified and installed crash-safely. The byte format and the
// install procedure are docs/snapshot_format.md.
//
// Files: every snapshot file is read and synced through the Backend's Env (backend.h), so a test
// can run the install on FaultInjectionEnv.
//
// Thread contract: ExportSnapshot may run on any thread, concurrently with writes (it reads only
// at `snap`). InstallSnapshotFile and ResumePendingInstall must be the only writers of the backend
// while they run (the applier thread, with physical compaction stopped: KvStore::BeginInstall).
// Errors: kDataLoss for a damaged or truncated file, kNotFound / kFailedPrecondition for a missing
// file, kInternal for I/O errors, kAborted when the export's sink refuses a chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "server/base/env.h"
#include "server/storage/backend.h"

namespace cairn::storage {

// The `meta` key naming a snapshot file whose install has begun but not finished.
inline constexpr char kPendingSnapshotKey[] = "local/pending_snapshot";

// True for the `meta` keys that describe this member rather than the replicated state
// (`member_id`, `member_name`, `term`, `local/...`): never exported, never overwritten by an
// install.
bool IsMemberLocalMetaKey(std::string_view key);

// Streams the dump of every family of `b` as seen at `snap` (non-null, from b->db(), and valid
// until this returns: hold the ReadView whose snapshot it is) to `sink`, in chunks of exactly
// `chunk_bytes` bytes (the last one possibly shorter). Memory use is about `chunk_bytes` plus one
// record, whatever the database size. If `sink` returns false, stops and returns kAborted.
absl::Status ExportSnapshot(Backend* b, const rocksdb::Snapshot* snap,
                            const std::function<bool(std::string_view)>& sink,
                            size_t chunk_bytes = 1 << 20);

// Reads the whole file at `path` through `env` and checks it (magic, version, record framing,
// count, CRC-32C, nothing after the trailer). kDataLoss on any damage or truncation; kNotFound if
// it is missing.
absl::Status VerifySnapshotFile(const std::string& path, base::Env* env = base::Env::Default());

// The meta counter `name` (a BE64 value, as Backend::ReadMetaInt reads it) in the snapshot file
// at `path`, or `missing` if the file has none. Reads and checks the whole file (errors as
// VerifySnapshotFile). The file is read through `env`.
absl::StatusOr<int64_t> ReadSnapshotMetaInt(const std::string& path, std::string_view name,
                                            int64_t missing, base::Env* env = base::Env::Default());

// Replaces the replicated contents of `b` with the snapshot file at `path`, keeping the
// member-local meta keys. Verifies the file first: on a verification error nothing in `b` has
// changed. Once it has started to change `b` it leaves the marker kPendingSnapshotKey until it
// has finished and synced, so a crash (or an error returned after that point) is completed by
// ResumePendingInstall at the next open. The file must stay in place until this returns OK.
// Readers holding an older rocksdb::Snapshot keep seeing the old state.
absl::Status InstallSnapshotFile(Backend* b, const std::string& path);

// At open, before anything reads the database: if an install was interrupted (the marker is
// present), redoes it from the file the marker names; otherwise does nothing. Idempotent.
// kFailedPrecondition if the file is gone, kDataLoss if it is damaged: the database then holds a
// partial state and must not be served.
absl::Status ResumePendingInstall(Backend* b);

namespace internal {
// Test seam: InstallSnapshotFile with the load batch size given, stopping with kAborted (as if the
// process crashed, the marker left in place) once `stop_after_batches` load batches have been
// written; a negative value never stops.
absl::Status InstallSnapshotFileForTest(Backend* b, const std::string& path, size_t batch_bytes,
                                        int64_t stop_after_batches);
}  // namespace internal

}  // namespace cairn::storage
