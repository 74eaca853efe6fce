// An in-memory Env for crash tests (ARCHITECTURE.md "Testing, in layers", item 3).
//
// It keeps, per file, the durable contents (as of the last Sync) apart from the unsynced writes,
// and per directory the durable entries (as of the last SyncDir) apart from unsynced creations,
// renames and removals. SimulateCrash() then throws away what a power failure may lose:
//
//   kDropUnsynced  every unsynced write and directory change is lost;
//   kTornWrites    a random prefix (by a seeded Rng) of each file's unsynced writes survives, the
//                  last surviving write possibly cut part way (a torn write), and a random prefix
//                  of each directory's unsynced changes survives.
//
// It can also flip bytes of a file (corruption) and make writes or syncs fail (to test that the
// WAL treats them as fatal). Counters of file and directory syncs let tests check the fsync
// budget. Directories are created durably at once (CreateDir is not the object of these tests).
//
// Crashing in the middle of an operation: ScheduleCrash(n, mode) makes the n-th file or directory
// sync from now crash instead of syncing. From then on the Env is "dead" until Restart(): every
// mutating operation succeeds without effect (the process that issued it is gone), so code under
// test runs on undisturbed; the test checks crashed() and reopens. This is how a crash between a
// write and its fsync (a torn tail), or inside a rollover or a release, is produced.
//
// Reads (ReadFile, NewSequentialFile, GetFileSize) see the current contents, synced or not, as a
// process reading its own writes does.
//
// Thread-safe (one mutex). Files handed out before a SimulateCrash() call (readers as well as
// writers) refuse every later operation with FailedPrecondition, as the process that held them is
// gone.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/base/env.h"

namespace cairn::base {

class FaultInjectionEnv final : public Env {
 public:
  enum class CrashMode { kDropUnsynced, kTornWrites };

  explicit FaultInjectionEnv(uint64_t seed = 1);
  ~FaultInjectionEnv() override;

  // Env.
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override;
  absl::Status ReadFile(const std::string& path, std::string* contents) override;
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override;
  absl::Status RenameFile(const std::string& from, const std::string& to) override;
  absl::Status RemoveFile(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override;
  absl::Status CreateDir(const std::string& dir) override;
  absl::Status SyncDir(const std::string& dir) override;
  bool FileExists(const std::string& path) override;

  // Loses what a power failure may lose (see above) and invalidates every open file.
  void SimulateCrash(CrashMode mode);
  // Crashes (as SimulateCrash(mode)) in place of the `syncs_from_now`-th (>= 1) file or directory
  // sync from now, then plays dead until Restart().
  void ScheduleCrash(uint64_t syncs_from_now, CrashMode mode);
  // True after a scheduled crash happened, until Restart().
  bool crashed() const;
  // Ends the dead period after a scheduled crash (the "machine" is back up) and cancels a
  // scheduled crash that has not happened yet.
  void Restart();

  // XORs byte `offset` of `path` with `mask`, in both its durable and current contents.
  // NotFound / OutOfRange if there is no such file or byte.
  absl::Status CorruptByte(const std::string& path, uint64_t offset, uint8_t mask);
  // Overwrites part of `path` durably (a stray write): bytes [offset, offset + data.size()).
  absl::Status OverwriteDurably(const std::string& path, uint64_t offset, std::string_view data);

  // When set, every WritableFile::Append (resp. Sync, SyncDir) fails with an injected error.
  void set_fail_writes(bool fail);
  void set_fail_syncs(bool fail);

  // Number of successful WritableFile::Sync and SyncDir calls so far.
  uint64_t file_sync_count() const;
  uint64_t dir_sync_count() const;
  // Bytes of `path` that are not durable yet (unsynced writes, counted by length); 0 if none.
  uint64_t UnsyncedBytes(const std::string& path) const;

 private:
  class File;
  class Reader;
  struct Node;
  struct DirOp;

  static std::string Parent(const std::string& path);
  void ApplyDirOp(const DirOp& op, std::map<std::string, std::shared_ptr<Node>>* names);
  void CrashLocked(CrashMode mode) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts a sync; true if it is the scheduled one (the crash then happened instead).
  bool SyncCrashesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Guards everything below, and the contents of every Node (files reach it through env_).
  mutable absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> dirs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Node>> current_names_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Node>> durable_names_ ABSL_GUARDED_BY(mu_);
  std::vector<DirOp> pending_dir_ops_ ABSL_GUARDED_BY(mu_);
  bool fail_writes_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_syncs_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t file_syncs_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t crash_countdown_ ABSL_GUARDED_BY(mu_) = 0;  // 0: none scheduled
  CrashMode scheduled_mode_ ABSL_GUARDED_BY(mu_) = CrashMode::kDropUnsynced;
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t dir_syncs_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cairn::base
