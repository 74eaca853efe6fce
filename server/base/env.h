// Env: the file-system seam of the server (ARCHITECTURE.md principle 2: I/O at the edges).
//
// Everything the server does to its own files (the WAL, snapshot files) goes through an Env, so
// tests can run it on FaultInjectionEnv (fault_injection_env.h), which loses unsynced bytes on a
// simulated crash, tears writes and flips bytes. Env::Default() is the real (POSIX) file system.
// RocksDB does its own I/O (server/storage/backend.h) and is not behind this seam.
//
// Errors: every operation returns a Status; I/O failures are kInternal with the path and errno
// text, a missing file or directory is kNotFound. The Env never aborts; the caller decides which
// failures are fatal (the WAL: docs/wal_format.md, "Durability contract").
//
// Durability model (what callers may rely on, and what FaultInjectionEnv enforces):
//  - bytes written to a file are durable only after WritableFile::Sync returns OK;
//  - creating, renaming or removing a file is durable only after SyncDir of its directory;
//  - Preallocate and Truncate change the file's contents like writes do (durable after Sync).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cairn::base {

// A file open for writing at a position. Not thread-safe: one owner. Destroying it closes it
// (without syncing).
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Writes `data` at the current position and advances it. Overwrites existing bytes (e.g.
  // preallocated zeros) and extends the file as needed.
  virtual absl::Status Append(std::string_view data) = 0;
  // Makes every byte written so far, and the file's size, durable (fdatasync).
  virtual absl::Status Sync() = 0;
  // Extends the file with zero bytes to at least `size` bytes (no-op if already as long). The
  // position does not move.
  virtual absl::Status Preallocate(uint64_t size) = 0;
  // Cuts the file to `size` bytes (which must not exceed the current size) and moves the position
  // to `size`.
  virtual absl::Status Truncate(uint64_t size) = 0;
  // The current write position.
  virtual uint64_t position() const = 0;
};

// A file open for reading from its start, front to back. Not thread-safe: one owner. Destroying
// it closes it.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;

  // Reads up to `n` bytes at the current position into *out (replacing its contents) and advances
  // past them. Fewer than `n` bytes only at the end of the file; none (empty *out) once there.
  virtual absl::Status Read(size_t n, std::string* out) = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX Env. Never null; never destroyed. Thread-safe.
  static Env* Default();

  // Creates (or empties) `path` for writing at position 0.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // Opens the existing `path` for writing; the position starts at 0 (callers Truncate to the
  // offset they continue at). NotFound if it does not exist.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path) = 0;
  // Opens the existing `path` for reading from its start. NotFound if it does not exist.
  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) = 0;
  // Reads the whole file into *contents.
  virtual absl::Status ReadFile(const std::string& path, std::string* contents) = 0;
  // The size of `path` in bytes (written bytes, synced or not). NotFound if it does not exist.
  virtual absl::StatusOr<uint64_t> GetFileSize(const std::string& path) = 0;
  virtual absl::Status RenameFile(const std::string& from, const std::string& to) = 0;
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // Names (not paths) of the entries in `dir`, excluding "." and "..", in no particular order.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Creates `dir` (one level) if it does not exist; OK if it already does.
  virtual absl::Status CreateDir(const std::string& dir) = 0;
  // Creates `dir` and every missing parent (CreateDir level by level); OK if it already exists.
  absl::Status CreateDirs(const std::string& dir);
  // Makes the creations, renames and removals of entries in `dir` durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  virtual bool FileExists(const std::string& path) = 0;
};

// dir + "/" + name.
std::string JoinPath(std::string_view dir, std::string_view name);

}  // namespace cairn::base
