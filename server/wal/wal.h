// The write-ahead log of a cairn member's Raft log (docs/wal_format.md is the contract).
//
// Driver-loop use (one Ready at a time, on the raft driver thread):
//
//   std::unique_ptr<Wal> wal = WalExists(env, dir) ? *Wal::Open(env, dir) : *Wal::Create(env, dir);
//   WalContents contents = wal->ReadAll();                 // once, before the first Save
//   raft::MemoryStorage storage;
//   CAIRN_CHECK_OK(LoadIntoStorage(contents, snapshot_data, &storage));  // RawNode reads it
//   loop:
//     raft::Ready rd = node.GetReady();
//     if (!rd.snapshot.IsEmpty()) {                       // state-machine data made durable
//       wal->SaveSnapshot(rd.snapshot.metadata);          //   first: the marker drops the log
//     }
//     wal->Save(rd.hard_state, rd.entries);                 // appends; overwrites a conflicting
//     if (rd.must_sync) wal->Sync();                        //   suffix; one fsync per Ready
//     ... update storage, send rd.messages, apply, node.Advance(rd) ...
//   after the state machine durably snapshots at index i (and storage.Compact):
//     wal->SaveSnapshot(metadata_at_i);  wal->ReleaseTo(i);
//
// Errors: Create/Open return a Status (DataLoss for a corrupt log, NotFound for no log,
// AlreadyExists when creating over one, Env errors otherwise). Once open, any failed write,
// fsync, rename or removal is fatal (CAIRN_CHECK): the durable state would be unknown.
//
// Thread safety: not thread-safe; owned by the raft driver thread. The Env must outlive the Wal.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/base/env.h"
#include "server/raft/message.h"
#include "server/raft/storage.h"

namespace cairn::wal {

// Default rollover size of a segment (docs/wal_format.md, "Creation, preallocation, rollover").
inline constexpr uint64_t kSegmentBytes = 64u << 20;

struct WalOptions {
  // Segments are preallocated to this size and rolled over once they hold this many bytes.
  uint64_t segment_bytes = kSegmentBytes;
};

// What a WAL holds, as replayed: the latest hard state, the latest snapshot marker (index 0: none)
// and the log entries after the marker, contiguous from snapshot.index + 1.
struct WalContents {
  raft::HardState hard_state;
  raft::SnapshotMetadata snapshot;
  std::vector<raft::Entry> entries;

  // Index of the last entry, or the marker's index if there are none.
  raft::LogIndex LastIndex() const {
    return entries.empty() ? snapshot.index : entries.back().index;
  }
  bool operator==(const WalContents&) const = default;
};

// True if `dir` holds at least one WAL segment.
bool WalExists(base::Env* env, const std::string& dir);

// Replays the WAL in `dir` without modifying anything (a torn tail is ignored, not cut).
// NotFound if there is no WAL, DataLoss if it is corrupt.
absl::StatusOr<WalContents> ReadWal(base::Env* env, const std::string& dir);

// Loads `contents` into a freshly constructed (empty) MemoryStorage: the snapshot marker (with
// `snapshot_data` as the snapshot's data), the hard state and the entries. Errors from
// MemoryStorage are returned.
absl::Status LoadIntoStorage(const WalContents& contents, std::string snapshot_data,
                             raft::MemoryStorage* storage);

// The segment file name for (seq, first_index): "<seq:016x>-<first_index:016x>.wal".
std::string SegmentFileName(uint64_t seq, raft::LogIndex first_index);

class Wal {
 public:
  // Creates a new, empty WAL in `dir` (creating the directory if needed; its parent must exist).
  // AlreadyExists if `dir` already holds segments.
  static absl::StatusOr<std::unique_ptr<Wal>> Create(base::Env* env, std::string dir,
                                                     WalOptions options = {});
  // Opens the WAL in `dir`: replays it (see ReadAll), deletes left-over temporary segments, cuts a
  // torn tail and makes the cut durable, and positions for appending.
  static absl::StatusOr<std::unique_ptr<Wal>> Open(base::Env* env, std::string dir,
                                                   WalOptions options = {});

  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;
  // Closes the files. Records saved since the last Sync are lost (they were never durable).
  ~Wal();

  // The contents replayed by Open (empty after Create). Moves them out: call at most once,
  // before the first Save or SaveSnapshot (CHECK-fails otherwise).
  WalContents ReadAll();

  // Appends `entries` (contiguous, increasing) and then `hard_state` (if set and not empty) to the
  // write buffer. An entry at index i logically replaces every stored entry >= i (Raft §5.3).
  // Entries at or below the snapshot marker's index are skipped (already compacted).
  // Preconditions (CHECK): entries.front().index <= LastIndex() + 1. Not durable until Sync();
  // may roll over to a new segment, which syncs the full one.
  void Save(const std::optional<raft::HardState>& hard_state,
            const std::vector<raft::Entry>& entries);
  // Records that the state machine has a snapshot at `metadata` (index, term, conf_state). The
  // caller must have made the snapshot's data durable before the marker is synced: after it, a
  // restart replays only the entries past metadata.index.
  // Entries up to its index are discarded; later ones are kept if this log holds entry
  // (index, term), else the snapshot replaces the whole log. Requires metadata.index greater than
  // the current marker's (CHECK). Not durable until Sync().
  void SaveSnapshot(const raft::SnapshotMetadata& metadata);
  // Makes everything saved so far durable: one write and one fdatasync of the last segment (none
  // if nothing is pending).
  void Sync();
  // Syncs, then removes every segment whose live entries are all at or below `index` (never the
  // last segment), oldest first, and fsyncs the directory. Requires index <= snapshot().index.
  void ReleaseTo(raft::LogIndex index);

  // The logical state after everything saved so far (durable or not).
  const raft::HardState& hard_state() const { return hard_state_; }
  const raft::SnapshotMetadata& snapshot() const { return snapshot_; }
  raft::LogIndex LastIndex() const { return last_index_; }
  // File names of the segments, oldest first.
  std::vector<std::string> SegmentFiles() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Segment {
    uint64_t seq;
    raft::LogIndex first_index;
  };

  Wal(base::Env* env, std::string dir, WalOptions options);

  // Creates segment (seq, first_index) durably (tmp file, preallocate, header, fsync, rename,
  // directory fsync) and makes it the file appended to.
  absl::Status StartSegment(uint64_t seq, raft::LogIndex first_index);
  void MaybeRollover();
  void WriteBuffer();

  base::Env* const env_;
  const std::string dir_;
  const WalOptions options_;
  std::deque<Segment> segments_;
  std::unique_ptr<base::WritableFile> file_;  // the last segment
  std::string buffer_;                        // records saved but not yet written to file_
  bool unsynced_ = false;                     // file_ has writes not yet fsynced
  raft::HardState hard_state_;
  raft::SnapshotMetadata snapshot_;
  raft::LogIndex last_index_ = 0;
  std::deque<raft::Term> terms_;  // terms of entries (snapshot_.index, last_index_]
  std::optional<WalContents> recovered_;
  bool saved_ = false;
};

}  // namespace cairn::wal
