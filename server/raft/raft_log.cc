#include "server/raft/raft_log.h"

#include <algorithm>

#include "server/base/check.h"

namespace cairn::raft {

std::optional<LogIndex> UnstableLog::MaybeFirstIndex() const {
  if (snapshot_.has_value()) return snapshot_->metadata.index + 1;
  return std::nullopt;
}

std::optional<LogIndex> UnstableLog::MaybeLastIndex() const {
  if (!entries_.empty()) return offset_ + entries_.size() - 1;
  if (snapshot_.has_value()) return snapshot_->metadata.index;
  return std::nullopt;
}

std::optional<Term> UnstableLog::MaybeTerm(LogIndex i) const {
  if (i < offset_) {
    if (snapshot_.has_value() && snapshot_->metadata.index == i) return snapshot_->metadata.term;
    return std::nullopt;
  }
  auto last = MaybeLastIndex();
  if (!last.has_value() || i > *last) return std::nullopt;
  if (entries_.empty()) return snapshot_->metadata.term;  // i == snapshot index == offset - 1
  return entries_[i - offset_].term;
}

void UnstableLog::StableTo(LogIndex i, Term t) {
  auto term = MaybeTerm(i);
  if (!term.has_value() || *term != t || i < offset_) return;  // replaced since handed out
  entries_.erase(entries_.begin(), entries_.begin() + (i + 1 - offset_));
  offset_ = i + 1;
}

void UnstableLog::StableSnapTo(LogIndex i) {
  if (snapshot_.has_value() && snapshot_->metadata.index == i) snapshot_.reset();
}

void UnstableLog::Restore(const Snapshot& snapshot) {
  offset_ = snapshot.metadata.index + 1;
  entries_.clear();
  snapshot_ = snapshot;
}

void UnstableLog::TruncateAndAppend(const std::vector<Entry>& entries) {
  LogIndex after = entries.front().index;
  if (after == offset_ + entries_.size()) {
    entries_.insert(entries_.end(), entries.begin(), entries.end());
  } else if (after <= offset_) {
    // Replaces everything unstable; the caller's Storage.Append will truncate its stable suffix.
    offset_ = after;
    entries_ = entries;
  } else {
    entries_.resize(after - offset_);
    entries_.insert(entries_.end(), entries.begin(), entries.end());
  }
}

void UnstableLog::AppendSlice(LogIndex lo, LogIndex hi, uint64_t max_bytes, uint64_t* bytes,
                              std::vector<Entry>* out) const {
  CAIRN_CHECK(offset_ <= lo && lo <= hi && hi <= offset_ + entries_.size())
      << "unstable slice [" << lo << ", " << hi << ") out of [" << offset_ << ", "
      << offset_ + entries_.size() << ")";
  for (LogIndex i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - offset_];
    *bytes += e.PayloadSize();
    if (!out->empty() && *bytes > max_bytes) return;
    out->push_back(e);
  }
}

RaftLog::RaftLog(const Storage* storage, uint64_t max_committed_size_per_ready)
    : storage_(storage), max_committed_size_per_ready_(max_committed_size_per_ready) {
  LogIndex first = storage_->FirstIndex();
  unstable_.set_offset(storage_->LastIndex() + 1);
  committed_ = first - 1;
  applied_ = first - 1;
}

LogIndex RaftLog::FirstIndex() const {
  if (auto i = unstable_.MaybeFirstIndex()) return *i;
  return storage_->FirstIndex();
}

LogIndex RaftLog::LastIndex() const {
  if (auto i = unstable_.MaybeLastIndex()) return *i;
  return storage_->LastIndex();
}

Term RaftLog::LastTerm() const {
  auto t = TermAt(LastIndex());
  CAIRN_CHECK(t.ok()) << "term of last index: " << t.status();
  return *t;
}

absl::StatusOr<Term> RaftLog::TermAt(LogIndex i) const {
  LogIndex dummy = FirstIndex() - 1;
  if (i < dummy) return CompactedError();
  if (i > LastIndex()) return UnavailableEntryError();
  if (auto t = unstable_.MaybeTerm(i)) return *t;
  auto t = storage_->TermAt(i);
  CAIRN_CHECK(t.ok() || IsCompacted(t.status()) || IsEntryUnavailable(t.status()))
      << "storage TermAt(" << i << "): " << t.status();
  return t;
}

Term RaftLog::TermOrZero(LogIndex i) const {
  auto t = TermAt(i);
  return t.ok() ? *t : 0;
}

bool RaftLog::MatchTerm(LogIndex i, Term t) const {
  auto term = TermAt(i);
  return term.ok() && *term == t;
}

std::optional<LogIndex> RaftLog::MaybeAppend(LogIndex index, Term log_term, LogIndex committed,
                                             const std::vector<Entry>& entries,
                                             LogIndex* conflict) {
  *conflict = 0;
  if (!MatchTerm(index, log_term)) return std::nullopt;
  LogIndex last_new = index + entries.size();
  LogIndex ci = FindConflict(entries);
  if (ci != 0) {
    // §5.3: delete the conflicting entry and all that follow it; committed entries never conflict
    // (Leader Completeness), so a conflict at or below commit means a broken invariant.
    CAIRN_CHECK(ci > committed_) << "entry " << ci << " conflicts with committed " << committed_;
    std::vector<Entry> suffix(entries.begin() + (ci - index - 1), entries.end());
    Append(suffix);
    *conflict = ci;
  }
  CommitTo(std::min(committed, last_new));
  return last_new;
}

LogIndex RaftLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return LastIndex();
  CAIRN_CHECK(entries.front().index > committed_)
      << "append at " << entries.front().index << " would overwrite committed " << committed_;
  CAIRN_CHECK(entries.front().index <= LastIndex() + 1)
      << "append at " << entries.front().index << " leaves a gap after " << LastIndex();
  unstable_.TruncateAndAppend(entries);
  return LastIndex();
}

LogIndex RaftLog::FindConflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!MatchTerm(e.index, e.term)) return e.index;
  }
  return 0;
}

std::pair<LogIndex, Term> RaftLog::FindConflictByTerm(LogIndex index, Term term) const {
  for (; index > 0; --index) {
    auto our = TermAt(index);
    if (!our.ok()) return {index, 0};
    if (*our <= term) return {index, *our};
  }
  return {0, 0};
}

bool RaftLog::IsUpToDate(LogIndex last_index, Term last_term) const {
  Term our = LastTerm();
  return last_term > our || (last_term == our && last_index >= LastIndex());
}

bool RaftLog::MaybeCommit(LogIndex max_index, Term term) {
  if (max_index > committed_ && TermOrZero(max_index) == term) {
    CommitTo(max_index);
    return true;
  }
  return false;
}

void RaftLog::CommitTo(LogIndex commit) {
  if (commit <= committed_) return;  // commit never decreases
  CAIRN_CHECK(commit <= LastIndex()) << "commit " << commit << " past last index " << LastIndex();
  committed_ = commit;
}

void RaftLog::AppliedTo(LogIndex applied) {
  if (applied == 0) return;
  CAIRN_CHECK(applied >= applied_ && applied <= committed_)
      << "applied " << applied << " outside [" << applied_ << ", " << committed_ << "]";
  applied_ = applied;
}

void RaftLog::Restore(const Snapshot& snapshot) {
  committed_ = snapshot.metadata.index;
  unstable_.Restore(snapshot);
}

absl::StatusOr<std::vector<Entry>> RaftLog::Slice(LogIndex lo, LogIndex hi,
                                                  uint64_t max_bytes) const {
  std::vector<Entry> out;
  if (lo == hi) return out;
  CAIRN_CHECK(lo < hi && hi <= LastIndex() + 1)
      << "slice [" << lo << ", " << hi << ") out of bound, last " << LastIndex();
  if (lo < FirstIndex()) return CompactedError();
  uint64_t bytes = 0;
  LogIndex offset = unstable_.offset();
  if (lo < offset) {
    LogIndex stable_hi = std::min(hi, offset);
    auto stored = storage_->Entries(lo, stable_hi, max_bytes);
    if (!stored.ok()) {
      CAIRN_CHECK(IsCompacted(stored.status())) << "storage Entries: " << stored.status();
      return stored.status();
    }
    out = std::move(*stored);
    if (out.size() < stable_hi - lo) return out;  // hit the byte limit
    for (const Entry& e : out) bytes += e.PayloadSize();
  }
  if (hi > offset) unstable_.AppendSlice(std::max(lo, offset), hi, max_bytes, &bytes, &out);
  return out;
}

absl::StatusOr<std::vector<Entry>> RaftLog::EntriesFrom(LogIndex i, uint64_t max_bytes) const {
  if (i > LastIndex()) return std::vector<Entry>{};
  return Slice(i, LastIndex() + 1, max_bytes);
}

std::vector<Entry> RaftLog::NextCommittedEntries() const {
  if (unstable_.snapshot().has_value()) return {};
  LogIndex lo = std::max(applied_ + 1, FirstIndex());
  if (committed_ + 1 <= lo) return {};
  auto ents = Slice(lo, committed_ + 1, max_committed_size_per_ready_);
  CAIRN_CHECK(ents.ok()) << "unexpected error reading committed entries: " << ents.status();
  return std::move(*ents);
}

bool RaftLog::HasNextCommittedEntries() const {
  if (unstable_.snapshot().has_value()) return false;
  return committed_ + 1 > std::max(applied_ + 1, FirstIndex());
}

absl::StatusOr<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_.snapshot().has_value()) return *unstable_.snapshot();
  return storage_->GetSnapshot();
}

}  // namespace cairn::raft
