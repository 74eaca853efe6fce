// The log storage seen by the Raft core: a read-only view of what the caller has made durable.
//
// The core never writes to Storage. The caller appends the entries, hard state and snapshot of
// each Ready to its storage (making them durable) and only then calls RawNode::Advance; the core
// reads the stable log back through this interface. Entries the core holds but the caller has
// not yet persisted live in the core's own "unstable" buffer.
//
// Errors: an index below the compacted prefix gives OutOfRange (IsCompacted), an index past the
// last entry gives NotFound (IsEntryUnavailable); GetSnapshot may give Unavailable while a snapshot
// is being produced (the core retries later). Any other error is treated as fatal by the core.
//
// Thread safety: the core calls Storage only from the thread that owns the RawNode. Implementations
// shared with another thread (e.g. a WAL being appended to) must synchronise internally.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/raft/message.h"

namespace cairn::raft {

absl::Status CompactedError();
absl::Status UnavailableEntryError();
absl::Status SnapshotTemporarilyUnavailableError();
bool IsCompacted(const absl::Status& status);
bool IsEntryUnavailable(const absl::Status& status);

struct InitialState {
  HardState hard_state;
  // Configuration as of the snapshot (the core replays conf-change entries after it).
  ConfState conf_state;
};

// The log every founding member of a new cluster starts with: one committed kConfChange entry
// per member (term 1, index 1..n: voters then learners). Keeping the initial configuration in
// the log means a member that joins later learns it by replication like any other change (the
// configuration in effect is always derived from snapshot + log, thesis §4.1).
std::vector<Entry> BootstrapEntries(const ConfState& cs);

class Storage {
 public:
  virtual ~Storage() = default;

  virtual absl::StatusOr<InitialState> GetInitialState() const = 0;
  // Entries [lo, hi), at least one (if lo < hi) and otherwise as many as fit in max_bytes of
  // payload. Requires FirstIndex() <= lo <= hi <= LastIndex() + 1, else the errors above.
  virtual absl::StatusOr<std::vector<Entry>> Entries(LogIndex lo, LogIndex hi,
                                                     uint64_t max_bytes) const = 0;
  // Term of entry i, for FirstIndex() - 1 <= i <= LastIndex() (the entry just before the first
  // one is the snapshot's last entry, whose term is kept).
  virtual absl::StatusOr<Term> TermAt(LogIndex i) const = 0;
  // Index of the last entry (the snapshot index if the log is empty).
  virtual LogIndex LastIndex() const = 0;
  // Index of the first entry still available (snapshot index + 1).
  virtual LogIndex FirstIndex() const = 0;
  // The most recent snapshot.
  virtual absl::StatusOr<Snapshot> GetSnapshot() const = 0;
};

// An in-memory Storage for tests and simulation. Mutators model what the caller does with a
// Ready: Append (entries), SetHardState, ApplySnapshot; CreateSnapshot + Compact model log
// compaction (§7). Not thread-safe.
class MemoryStorage : public Storage {
 public:
  MemoryStorage();
  // Bootstrap: a fresh log holding BootstrapEntries(cs), committed, at term 1.
  explicit MemoryStorage(const ConfState& cs);

  absl::StatusOr<InitialState> GetInitialState() const override;
  absl::StatusOr<std::vector<Entry>> Entries(LogIndex lo, LogIndex hi,
                                             uint64_t max_bytes) const override;
  absl::StatusOr<Term> TermAt(LogIndex i) const override;
  LogIndex LastIndex() const override;
  LogIndex FirstIndex() const override;
  absl::StatusOr<Snapshot> GetSnapshot() const override;

  void SetHardState(const HardState& hs) { hard_state_ = hs; }
  const HardState& hard_state() const { return hard_state_; }
  // Replaces the whole log with `snapshot`. FailedPrecondition if it is older than the current one.
  absl::Status ApplySnapshot(const Snapshot& snapshot);
  // Records a snapshot at applied index i (FirstIndex()-1 < i <= LastIndex()) holding `data`,
  // with configuration `cs`. Does not compact; call Compact for that.
  absl::StatusOr<Snapshot> CreateSnapshot(LogIndex i, const ConfState& cs, std::string data);
  // Discards entries before compact_index (keeping compact_index). Compacted if already gone.
  absl::Status Compact(LogIndex compact_index);
  // Appends entries (contiguous, increasing); entries at or after the first new index are
  // replaced (a follower's conflicting suffix, §5.3). Entries already compacted are skipped.
  absl::Status Append(const std::vector<Entry>& entries);

  // Bytes of entry data the log holds (the entries after the snapshot).
  uint64_t Bytes() const { return bytes_; }
  // The lowest index c <= i (and not below the log's snapshot index) such that the entries
  // (c, i] number at most `max_entries` and hold at most `max_bytes` of data: where to Compact
  // after a snapshot at i so that the log keeps that much behind it for slow followers.
  LogIndex CompactIndexKeeping(LogIndex i, uint64_t max_entries, uint64_t max_bytes) const;

 private:
  HardState hard_state_;
  Snapshot snapshot_;
  // entries_[0] is a dummy holding the snapshot's index and term; real entries follow.
  std::vector<Entry> entries_;
  uint64_t bytes_ = 0;  // sum of entries_[1..].data.size()
};

}  // namespace cairn::raft
