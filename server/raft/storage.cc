#include "server/raft/storage.h"

#include "absl/strings/str_cat.h"
#include "server/base/check.h"

namespace cairn::raft {

absl::Status CompactedError() {
  return absl::OutOfRangeError("raft: requested index is unavailable due to compaction");
}
absl::Status UnavailableEntryError() {
  return absl::NotFoundError("raft: requested entry at index is unavailable");
}
absl::Status SnapshotTemporarilyUnavailableError() {
  return absl::UnavailableError("raft: snapshot is temporarily unavailable");
}
bool IsCompacted(const absl::Status& status) {
  return status.code() == absl::StatusCode::kOutOfRange;
}
bool IsEntryUnavailable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kNotFound;
}

MemoryStorage::MemoryStorage() : entries_(1) {}

std::vector<Entry> BootstrapEntries(const ConfState& cs) {
  std::vector<Entry> entries;
  auto add = [&](MemberId id, ConfChangeType type) {
    Entry e;
    e.term = 1;
    e.index = entries.size() + 1;
    e.type = EntryType::kConfChange;
    e.data = EncodeConfChange(ConfChange{type, id, ""});
    entries.push_back(std::move(e));
  };
  for (MemberId id : cs.voters) add(id, ConfChangeType::kAddNode);
  for (MemberId id : cs.learners) add(id, ConfChangeType::kAddLearnerNode);
  return entries;
}

MemoryStorage::MemoryStorage(const ConfState& cs) : entries_(1) {
  std::vector<Entry> entries = BootstrapEntries(cs);
  entries_.insert(entries_.end(), entries.begin(), entries.end());
  hard_state_ = HardState{1, kNoMember, entries.size()};
}

absl::StatusOr<InitialState> MemoryStorage::GetInitialState() const {
  return InitialState{hard_state_, snapshot_.metadata.conf_state};
}

LogIndex MemoryStorage::FirstIndex() const { return entries_[0].index + 1; }

LogIndex MemoryStorage::LastIndex() const { return entries_[0].index + entries_.size() - 1; }

absl::StatusOr<std::vector<Entry>> MemoryStorage::Entries(LogIndex lo, LogIndex hi,
                                                          uint64_t max_bytes) const {
  LogIndex offset = entries_[0].index;
  if (lo <= offset) return CompactedError();
  if (hi > LastIndex() + 1) return UnavailableEntryError();
  CAIRN_CHECK(lo <= hi) << "Entries(" << lo << ", " << hi << ")";
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (LogIndex i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - offset];
    bytes += e.PayloadSize();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<Term> MemoryStorage::TermAt(LogIndex i) const {
  LogIndex offset = entries_[0].index;
  if (i < offset) return CompactedError();
  if (i - offset >= entries_.size()) return UnavailableEntryError();
  return entries_[i - offset].term;
}

absl::StatusOr<Snapshot> MemoryStorage::GetSnapshot() const { return snapshot_; }

absl::Status MemoryStorage::ApplySnapshot(const Snapshot& snapshot) {
  if (snapshot.metadata.index <= snapshot_.metadata.index) {
    return absl::FailedPreconditionError(
        absl::StrCat("raft: snapshot at ", snapshot.metadata.index, " is out of date"));
  }
  snapshot_ = snapshot;
  bytes_ = 0;
  entries_.assign(1,
                  Entry{snapshot.metadata.term, snapshot.metadata.index, EntryType::kNormal, ""});
  return absl::OkStatus();
}

absl::StatusOr<Snapshot> MemoryStorage::CreateSnapshot(LogIndex i, const ConfState& cs,
                                                       std::string data) {
  if (i <= snapshot_.metadata.index) {
    return absl::FailedPreconditionError(absl::StrCat("raft: snapshot at ", i, " is out of date"));
  }
  CAIRN_CHECK(i <= LastIndex()) << "snapshot " << i << " past last index " << LastIndex();
  snapshot_.metadata.index = i;
  snapshot_.metadata.term = entries_[i - entries_[0].index].term;
  snapshot_.metadata.conf_state = cs;
  snapshot_.data = std::move(data);
  return snapshot_;
}

absl::Status MemoryStorage::Compact(LogIndex compact_index) {
  LogIndex offset = entries_[0].index;
  if (compact_index <= offset) return CompactedError();
  CAIRN_CHECK(compact_index <= LastIndex())
      << "compact " << compact_index << " past last index " << LastIndex();
  size_t i = compact_index - offset;
  for (size_t k = 1; k <= i; ++k) bytes_ -= entries_[k].data.size();
  entries_[0] = Entry{entries_[i].term, entries_[i].index, EntryType::kNormal, ""};
  entries_.erase(entries_.begin() + 1, entries_.begin() + i + 1);
  return absl::OkStatus();
}

absl::Status MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  LogIndex first = FirstIndex();
  LogIndex last_new = entries.back().index;
  if (last_new < first) return absl::OkStatus();  // all compacted already
  size_t skip = entries.front().index < first ? first - entries.front().index : 0;
  LogIndex start = entries[skip].index;
  CAIRN_CHECK(start <= LastIndex() + 1)
      << "missing log entries: last " << LastIndex() << ", appending at " << start;
  for (size_t k = start - entries_[0].index; k < entries_.size(); ++k) {
    bytes_ -= entries_[k].data.size();  // a conflicting suffix, replaced
  }
  entries_.resize(start - entries_[0].index);
  for (size_t k = skip; k < entries.size(); ++k) bytes_ += entries[k].data.size();
  entries_.insert(entries_.end(), entries.begin() + skip, entries.end());
  return absl::OkStatus();
}

LogIndex MemoryStorage::CompactIndexKeeping(LogIndex i, uint64_t max_entries,
                                            uint64_t max_bytes) const {
  const LogIndex offset = entries_[0].index;
  CAIRN_CHECK(i >= offset && i <= LastIndex()) << "index " << i << " outside the log";
  // Compact(c) keeps the entries after c: widen (c, i] while the next older entry fits.
  LogIndex c = i;
  uint64_t bytes = 0;
  while (c > offset && i - c < max_entries) {
    const uint64_t b = entries_[c - offset].data.size();
    if (bytes + b > max_bytes) break;
    bytes += b;
    --c;
  }
  return c;
}

}  // namespace cairn::raft
