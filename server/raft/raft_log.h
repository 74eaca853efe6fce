// The Raft log as the core sees it: the caller's stable Storage followed by the entries (and at
// most one snapshot) the core holds that the caller has not yet persisted (§5.3, §7).
//
//   snapshot/first.....applied....committed....stable.....last
//   |-------- Storage (durable) ------------------------||-- unstable --|
//
// Invariants: applied <= committed <= last index; committed entries are never truncated.
// Thread safety: owned by the thread that owns the RawNode.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "server/raft/message.h"
#include "server/raft/storage.h"

namespace cairn::raft {

// Entries (and a snapshot) not yet handed to and persisted by the caller.
class UnstableLog {
 public:
  std::optional<LogIndex> MaybeFirstIndex() const;
  std::optional<LogIndex> MaybeLastIndex() const;
  std::optional<Term> MaybeTerm(LogIndex i) const;
  // The caller persisted entries up to (i, t): drop them from here if they still match.
  void StableTo(LogIndex i, Term t);
  void StableSnapTo(LogIndex i);
  void Restore(const Snapshot& snapshot);
  void TruncateAndAppend(const std::vector<Entry>& entries);
  // Entries [lo, hi); requires offset <= lo <= hi <= last + 1.
  void AppendSlice(LogIndex lo, LogIndex hi, uint64_t max_bytes, uint64_t* bytes,
                   std::vector<Entry>* out) const;

  const std::vector<Entry>& entries() const { return entries_; }
  const std::optional<Snapshot>& snapshot() const { return snapshot_; }
  LogIndex offset() const { return offset_; }
  void set_offset(LogIndex offset) { offset_ = offset; }

 private:
  std::optional<Snapshot> snapshot_;
  std::vector<Entry> entries_;
  LogIndex offset_ = 0;  // index of entries_[0], or of the next entry when empty
};

class RaftLog {
 public:
  // `storage` must outlive the log. Starts with committed = applied = the storage's snapshot index.
  RaftLog(const Storage* storage, uint64_t max_committed_size_per_ready);

  LogIndex FirstIndex() const;
  LogIndex LastIndex() const;
  Term LastTerm() const;
  // Term of entry i, for FirstIndex()-1 <= i <= LastIndex(); Compacted / Unavailable otherwise.
  absl::StatusOr<Term> TermAt(LogIndex i) const;
  // Term of entry i, or 0 if it is not available.
  Term TermOrZero(LogIndex i) const;
  bool MatchTerm(LogIndex i, Term t) const;

  // Follower side of AppendEntries (§5.3): if the entry at `index` has term `log_term`, appends
  // `entries` (truncating a conflicting suffix), advances commit to min(committed, last new index)
  // and returns the last new index; otherwise nullopt. *conflict receives the first index that
  // was (re)written, or 0 if nothing was.
  std::optional<LogIndex> MaybeAppend(LogIndex index, Term log_term, LogIndex committed,
                                      const std::vector<Entry>& entries, LogIndex* conflict);
  // Appends after truncating at entries[0].index (which must be > committed). Returns last index.
  LogIndex Append(const std::vector<Entry>& entries);
  // First entry in `entries` whose term differs from ours (or that we lack); 0 if none.
  LogIndex FindConflict(const std::vector<Entry>& entries) const;
  // Largest (j, term(j)) with j <= index and term(j) <= term: the fast-backtracking hint (§5.3,
  // "the follower can include the term of the conflicting entry"). (index, 0) if j is compacted.
  std::pair<LogIndex, Term> FindConflictByTerm(LogIndex index, Term term) const;
  // §5.4.1 election restriction: is (last_index, last_term) at least as up to date as our log?
  bool IsUpToDate(LogIndex last_index, Term last_term) const;
  // §5.4.2: commits max_index only if its entry is from `term` (the leader's current term).
  bool MaybeCommit(LogIndex max_index, Term term);
  void CommitTo(LogIndex commit);
  void AppliedTo(LogIndex applied);
  void StableTo(LogIndex i, Term t) { unstable_.StableTo(i, t); }
  void StableSnapTo(LogIndex i) { unstable_.StableSnapTo(i); }
  // Replaces the log with the snapshot (§7); committed moves to its index.
  void Restore(const Snapshot& snapshot);

  // Entries [lo, hi) limited to max_bytes (at least one). Compacted if lo is compacted.
  absl::StatusOr<std::vector<Entry>> Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes) const;
  // Entries from i to the end, limited to max_bytes.
  absl::StatusOr<std::vector<Entry>> EntriesFrom(LogIndex i, uint64_t max_bytes) const;
  const std::vector<Entry>& UnstableEntries() const { return unstable_.entries(); }
  const std::optional<Snapshot>& UnstableSnapshot() const { return unstable_.snapshot(); }
  // Committed entries not yet applied, up to max_committed_size_per_ready bytes. Empty while a
  // snapshot is waiting to be persisted (it must be applied first).
  std::vector<Entry> NextCommittedEntries() const;
  bool HasNextCommittedEntries() const;
  // The snapshot to send to a follower that is behind the compacted log.
  absl::StatusOr<Snapshot> GetSnapshot() const;

  LogIndex committed() const { return committed_; }
  LogIndex applied() const { return applied_; }

 private:
  const Storage* storage_;
  UnstableLog unstable_;
  LogIndex committed_ = 0;
  LogIndex applied_ = 0;
  uint64_t max_committed_size_per_ready_;
};

}  // namespace cairn::raft
