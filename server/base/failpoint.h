// Failpoints: named places where a test run injects an I/O error into a real `cairn` process
// (docs/failpoints.md). Configured once, at the first hit, from the environment variable
//
//   CAIRN_FAILPOINTS="name=action[@after:N][,name=action[@after:N]...]"
//
// actions: `error` (EIO) or `enospc` (ENOSPC). `after:N` lets the first N hits pass and fails
// every later one (a disk that stays broken: the fail-stop contract is about what happens next).
// Without the variable every failpoint passes; the cost is one relaxed load per hit.
//
// Points: `fsync` (WritableFile::Sync of the POSIX Env: WAL and snapshot files), `write`
// (WritableFile::Append), `preallocate`, `dir_fsync` (Env::SyncDir), `backend_sync` (RocksDB's
// WAL sync in storage::Backend), `backend_write` (storage::Backend::Write).
//
// Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace cairn::base {

// 0 when failpoint `name` passes this hit; otherwise the errno to inject.
int FailpointErrno(std::string_view name);

// Parses a CAIRN_FAILPOINTS value; for tests and for the startup log. Returns "" when valid,
// otherwise what is wrong.
std::string ValidateFailpoints(std::string_view spec);

}  // namespace cairn::base
