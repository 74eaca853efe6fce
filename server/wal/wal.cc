#include "server/wal/wal.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/base/check.h"
#include "server/base/logging.h"
#include "server/wal/record.h"

namespace cairn::wal {

using base::Env;
using base::JoinPath;
using base::WritableFile;

namespace {

constexpr std::string_view kSegmentSuffix = ".wal";
constexpr std::string_view kTempSuffix = ".wal.tmp";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool ParseHex16(std::string_view s, uint64_t* v) {
  if (s.size() != 16) return false;
  uint64_t result = 0;
  for (char c : s) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return false;
    }
    result = (result << 4) | static_cast<uint64_t>(digit);
  }
  *v = result;
  return true;
}

// Parses "<seq>-<first_index>.wal".
bool ParseSegmentFileName(std::string_view name, uint64_t* seq, raft::LogIndex* first_index) {
  if (name.size() != 16 + 1 + 16 + kSegmentSuffix.size() || !EndsWith(name, kSegmentSuffix) ||
      name[16] != '-') {
    return false;
  }
  return ParseHex16(name.substr(0, 16), seq) && ParseHex16(name.substr(17, 16), first_index);
}

struct SegmentFile {
  uint64_t seq;
  raft::LogIndex first_index;
  std::string name;
};

struct DirListing {
  std::vector<SegmentFile> segments;  // sorted by seq
  std::vector<std::string> temp_files;
};

absl::StatusOr<DirListing> ListWalDir(Env* env, const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = env->ListDir(dir);
  if (!names.ok()) return names.status();
  DirListing listing;
  for (const std::string& name : *names) {
    SegmentFile segment{0, 0, name};
    if (ParseSegmentFileName(name, &segment.seq, &segment.first_index)) {
      listing.segments.push_back(std::move(segment));
    } else if (EndsWith(name, kTempSuffix)) {
      listing.temp_files.push_back(name);
    }
  }
  std::sort(listing.segments.begin(), listing.segments.end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.seq < b.seq; });
  return listing;
}

// The result of replaying a directory: the contents plus what the writer needs to continue.
struct Replayed {
  WalContents contents;
  std::vector<SegmentFile> segments;
  uint64_t last_end = 0;  // where appends continue in the last segment
  bool torn = false;
  std::string torn_reason;
};

class Replayer {
 public:
  absl::Status Corrupt(const std::string& name, uint64_t offset, absl::string_view why) const {
    return absl::DataLossError(
        absl::StrCat("wal: corrupt segment ", name, " at offset ", offset, ": ", why));
  }

  absl::Status Header(const SegmentFile& file, const Record& record, bool first) {
    absl::StatusOr<SegmentHeader> header = DecodeSegmentHeader(record.payload);
    if (!header.ok()) return Corrupt(file.name, record.offset, header.status().message());
    if (header->seq != file.seq || header->first_index != file.first_index) {
      return Corrupt(file.name, record.offset,
                     absl::StrCat("segment header says seq ", header->seq, " first index ",
                                  header->first_index, ", unlike the file name"));
    }
    if (first) {
      contents_.hard_state = header->hard_state;
      contents_.snapshot = header->snapshot;
      return absl::OkStatus();
    }
    // The writer copies its state into each new segment's header; it must match the replay.
    if (header->hard_state != contents_.hard_state || header->snapshot != contents_.snapshot) {
      return Corrupt(file.name, record.offset,
                     "segment header state differs from the state replayed from earlier segments");
    }
    return absl::OkStatus();
  }

  absl::Status Apply(const SegmentFile& file, const Record& record) {
    switch (record.type) {
      case RecordType::kSegmentHeader:
        return Corrupt(file.name, record.offset, "segment header in the middle of a segment");
      case RecordType::kEntry: {
        absl::StatusOr<raft::Entry> entry = raft::DecodeEntry(record.payload);
        if (!entry.ok()) return Corrupt(file.name, record.offset, entry.status().message());
        std::vector<raft::Entry>& entries = contents_.entries;
        if (!entries.empty() && entry->index <= entries.back().index) {
          // An append at index i replaces everything >= i (a conflicting suffix, Raft §5.3).
          if (entry->index <= entries.front().index) {
            entries.clear();
          } else {
            entries.resize(entry->index - entries.front().index);
          }
        }
        if (!entries.empty() && entry->index != entries.back().index + 1) {
          return Corrupt(file.name, record.offset,
                         absl::StrCat("entry ", entry->index, " does not follow entry ",
                                      entries.back().index));
        }
        entries.push_back(*std::move(entry));
        return absl::OkStatus();
      }
      case RecordType::kHardState: {
        absl::StatusOr<raft::HardState> hs = DecodeHardState(record.payload);
        if (!hs.ok()) return Corrupt(file.name, record.offset, hs.status().message());
        contents_.hard_state = *hs;
        return absl::OkStatus();
      }
      case RecordType::kSnapshot: {
        absl::StatusOr<SnapshotRecord> snap = DecodeSnapshotRecord(record.payload);
        if (!snap.ok()) return Corrupt(file.name, record.offset, snap.status().message());
        std::vector<raft::Entry>& entries = contents_.entries;
        if (snap->keep_suffix) {
          auto keep = std::find_if(entries.begin(), entries.end(), [&](const raft::Entry& e) {
            return e.index > snap->metadata.index;
          });
          entries.erase(entries.begin(), keep);
        } else {
          entries.clear();
        }
        contents_.snapshot = snap->metadata;
        return absl::OkStatus();
      }
    }
    return Corrupt(file.name, record.offset, "unknown record type");
  }

  // Checks the invariants of a complete replay (docs/wal_format.md, "Replay").
  absl::Status Finish(const SegmentFile& last) {
    std::vector<raft::Entry>& entries = contents_.entries;
    const raft::LogIndex snap = contents_.snapshot.index;
    auto keep = std::find_if(entries.begin(), entries.end(),
                             [&](const raft::Entry& e) { return e.index > snap; });
    entries.erase(entries.begin(), keep);
    if (!entries.empty() && entries.front().index != snap + 1) {
      return absl::DataLossError(absl::StrCat(
          "wal: entries ", snap + 1, "..", entries.front().index - 1,
          " are missing (after snapshot index ", snap, "; last segment ", last.name, ")"));
    }
    if (contents_.hard_state.commit > contents_.LastIndex()) {
      return absl::DataLossError(absl::StrCat("wal: hard state commit ",
                                              contents_.hard_state.commit,
                                              " is past the last index ", contents_.LastIndex()));
    }
    return absl::OkStatus();
  }

  WalContents& contents() { return contents_; }

 private:
  WalContents contents_;
};

absl::StatusOr<Replayed> ReplayDir(Env* env, const std::string& dir) {
  absl::StatusOr<DirListing> listing = ListWalDir(env, dir);
  if (!listing.ok()) return listing.status();
  if (listing->segments.empty())
    return absl::NotFoundError(absl::StrCat("wal: no segments in ", dir));
  Replayed out;
  out.segments = std::move(listing->segments);
  for (size_t i = 1; i < out.segments.size(); ++i) {
    if (out.segments[i].seq != out.segments[i - 1].seq + 1) {
      return absl::DataLossError(absl::StrCat("wal: segment ", out.segments[i - 1].seq + 1,
                                              " is missing (before ", out.segments[i].name, ")"));
    }
  }
  Replayer replayer;
  std::string bytes;
  for (size_t i = 0; i < out.segments.size(); ++i) {
    const SegmentFile& file = out.segments[i];
    const bool is_last = i + 1 == out.segments.size();
    if (absl::Status s = env->ReadFile(JoinPath(dir, file.name), &bytes); !s.ok()) return s;
    absl::StatusOr<SegmentScan> scan = ScanSegment(bytes, is_last, file.name);
    if (!scan.ok()) return scan.status();
    // A segment is renamed into place only after its header is durable (docs/wal_format.md).
    if (scan->records.empty() || scan->records.front().type != RecordType::kSegmentHeader) {
      return replayer.Corrupt(file.name, 0, "segment does not start with a segment header");
    }
    if (absl::Status s = replayer.Header(file, scan->records.front(), i == 0); !s.ok()) return s;
    for (size_t r = 1; r < scan->records.size(); ++r) {
      if (absl::Status s = replayer.Apply(file, scan->records[r]); !s.ok()) return s;
    }
    if (is_last) {
      out.last_end = scan->end;
      out.torn = scan->torn;
      out.torn_reason = scan->torn_reason;
    }
  }
  if (absl::Status s = replayer.Finish(out.segments.back()); !s.ok()) return s;
  out.contents = std::move(replayer.contents());
  return out;
}

#define WAL_CHECK_OK(expr, what)                                                         \
  do {                                                                                   \
    const absl::Status wal_check_status_ = (expr);                                       \
    CAIRN_CHECK(wal_check_status_.ok()) << "wal: " << what << ": " << wal_check_status_; \
  } while (0)

}  // namespace

std::string SegmentFileName(uint64_t seq, raft::LogIndex first_index) {
  char name[64];
  std::snprintf(name, sizeof(name), "%016" PRIx64 "-%016" PRIx64 ".wal", seq, first_index);
  return name;
}

bool WalExists(Env* env, const std::string& dir) {
  absl::StatusOr<DirListing> listing = ListWalDir(env, dir);
  return listing.ok() && !listing->segments.empty();
}

absl::StatusOr<WalContents> ReadWal(Env* env, const std::string& dir) {
  absl::StatusOr<Replayed> replayed = ReplayDir(env, dir);
  if (!replayed.ok()) return replayed.status();
  return std::move(replayed->contents);
}

absl::Status LoadIntoStorage(const WalContents& contents, std::string snapshot_data,
                             raft::MemoryStorage* storage) {
  if (contents.snapshot.index > 0) {
    absl::Status s =
        storage->ApplySnapshot(raft::Snapshot{contents.snapshot, std::move(snapshot_data)});
    if (!s.ok()) return s;
  }
  storage->SetHardState(contents.hard_state);
  return storage->Append(contents.entries);
}

Wal::Wal(Env* env, std::string dir, WalOptions options)
    : env_(env), dir_(std::move(dir)), options_(options) {
  CAIRN_CHECK(options_.segment_bytes > 0) << "wal: segment_bytes must be positive";
}

Wal::~Wal() = default;

absl::StatusOr<std::unique_ptr<Wal>> Wal::Create(Env* env, std::string dir, WalOptions options) {
  if (absl::Status s = env->CreateDir(dir); !s.ok()) return s;
  absl::StatusOr<DirListing> listing = ListWalDir(env, dir);
  if (!listing.ok()) return listing.status();
  if (!listing->segments.empty()) {
    return absl::AlreadyExistsError(absl::StrCat("wal: ", dir, " already holds a WAL"));
  }
  std::unique_ptr<Wal> wal(new Wal(env, std::move(dir), options));
  if (absl::Status s = wal->StartSegment(0, 1); !s.ok()) return s;
  wal->recovered_.emplace();
  return wal;
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::Open(Env* env, std::string dir, WalOptions options) {
  absl::StatusOr<Replayed> replayed = ReplayDir(env, dir);
  if (!replayed.ok()) return replayed.status();
  std::unique_ptr<Wal> wal(new Wal(env, std::move(dir), options));

  // A crash while creating a segment leaves its temporary file; it was never part of the log.
  absl::StatusOr<DirListing> listing = ListWalDir(env, wal->dir_);
  if (!listing.ok()) return listing.status();
  for (const std::string& name : listing->temp_files) {
    if (absl::Status s = env->RemoveFile(JoinPath(wal->dir_, name)); !s.ok()) return s;
  }
  if (!listing->temp_files.empty()) {
    if (absl::Status s = env->SyncDir(wal->dir_); !s.ok()) return s;
  }

  for (const SegmentFile& file : replayed->segments) {
    wal->segments_.push_back(Segment{file.seq, file.first_index});
  }
  const SegmentFile& last = replayed->segments.back();
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env->ReopenWritableFile(JoinPath(wal->dir_, last.name));
  if (!file.ok()) return file.status();
  wal->file_ = *std::move(file);
  if (replayed->torn) {
    CAIRN_LOG(kWarn, "wal") << "cutting torn tail"
                            << " segment=" << last.name << " offset=" << replayed->last_end
                            << " reason=\"" << replayed->torn_reason << "\"";
  }
  // Cut whatever follows the last valid record and re-zero the preallocated space, so a later torn
  // write can never be mistaken for (or mixed with) left-over bytes.
  if (absl::Status s = wal->file_->Truncate(replayed->last_end); !s.ok()) return s;
  if (absl::Status s = wal->file_->Preallocate(options.segment_bytes); !s.ok()) return s;
  if (absl::Status s = wal->file_->Sync(); !s.ok()) return s;

  const WalContents& contents = replayed->contents;
  wal->hard_state_ = contents.hard_state;
  wal->snapshot_ = contents.snapshot;
  wal->last_index_ = contents.LastIndex();
  for (const raft::Entry& e : contents.entries) wal->terms_.push_back(e.term);
  wal->recovered_ = std::move(replayed->contents);
  return wal;
}

WalContents Wal::ReadAll() {
  CAIRN_CHECK(recovered_.has_value() && !saved_)
      << "wal: ReadAll must be called once, before the first Save";
  WalContents contents = *std::move(recovered_);
  recovered_.reset();
  return contents;
}

absl::Status Wal::StartSegment(uint64_t seq, raft::LogIndex first_index) {
  const std::string name = SegmentFileName(seq, first_index);
  const std::string temp = JoinPath(dir_, absl::StrCat(name, ".tmp"));
  absl::StatusOr<std::unique_ptr<WritableFile>> file = env_->NewWritableFile(temp);
  if (!file.ok()) return file.status();
  std::string header;
  AppendRecord(RecordType::kSegmentHeader,
               EncodeSegmentHeader(SegmentHeader{seq, first_index, hard_state_, snapshot_}),
               &header);
  if (absl::Status s = (*file)->Preallocate(options_.segment_bytes); !s.ok()) return s;
  if (absl::Status s = (*file)->Append(header); !s.ok()) return s;
  if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
  if (absl::Status s = env_->RenameFile(temp, JoinPath(dir_, name)); !s.ok()) return s;
  if (absl::Status s = env_->SyncDir(dir_); !s.ok()) return s;
  file_ = *std::move(file);
  segments_.push_back(Segment{seq, first_index});
  unsynced_ = false;
  return absl::OkStatus();
}

void Wal::Save(const std::optional<raft::HardState>& hard_state,
               const std::vector<raft::Entry>& entries) {
  saved_ = true;
  std::string payload;
  for (const raft::Entry& e : entries) {
    if (e.index <= snapshot_.index) continue;  // already compacted, as MemoryStorage::Append
    CAIRN_CHECK(e.index <= last_index_ + 1)
        << "wal: appending entry " << e.index << " after last index " << last_index_;
    payload.clear();
    raft::EncodeEntry(e, &payload);
    AppendRecord(RecordType::kEntry, payload, &buffer_);
    terms_.resize(e.index - snapshot_.index - 1);
    terms_.push_back(e.term);
    last_index_ = e.index;
  }
  // After the entries: a surviving prefix of this Save never has a commit beyond its entries.
  if (hard_state.has_value() && !hard_state->IsEmpty()) {
    AppendRecord(RecordType::kHardState, EncodeHardState(*hard_state), &buffer_);
    hard_state_ = *hard_state;
  }
  MaybeRollover();
}

void Wal::SaveSnapshot(const raft::SnapshotMetadata& metadata) {
  saved_ = true;
  CAIRN_CHECK(metadata.index > snapshot_.index)
      << "wal: snapshot at " << metadata.index << " is not newer than " << snapshot_.index;
  const bool keep_suffix = metadata.index <= last_index_ &&
                           terms_[metadata.index - snapshot_.index - 1] == metadata.term;
  AppendRecord(RecordType::kSnapshot, EncodeSnapshotRecord(SnapshotRecord{metadata, keep_suffix}),
               &buffer_);
  if (keep_suffix) {
    terms_.erase(terms_.begin(), terms_.begin() + (metadata.index - snapshot_.index));
  } else {
    terms_.clear();
    last_index_ = metadata.index;
  }
  snapshot_ = metadata;
  MaybeRollover();
}

void Wal::WriteBuffer() {
  if (buffer_.empty()) return;
  WAL_CHECK_OK(file_->Append(buffer_), "write to " << SegmentFiles().back());
  buffer_.clear();
  unsynced_ = true;
}

void Wal::Sync() {
  WriteBuffer();
  if (!unsynced_) return;
  WAL_CHECK_OK(file_->Sync(), "fsync of " << SegmentFiles().back());
  unsynced_ = false;
}

void Wal::MaybeRollover() {
  if (file_->position() + buffer_.size() < options_.segment_bytes) return;
  // The full segment is completely written and fsynced before its successor exists, so only the
  // last segment can ever hold a torn tail (docs/wal_format.md).
  Sync();
  WAL_CHECK_OK(StartSegment(segments_.back().seq + 1, last_index_ + 1), "rollover in " << dir_);
}

void Wal::ReleaseTo(raft::LogIndex index) {
  CAIRN_CHECK(index <= snapshot_.index)
      << "wal: release to " << index << " past the snapshot index " << snapshot_.index;
  Sync();  // the marker that justifies the release must be durable first
  size_t remove = 0;
  while (remove + 1 < segments_.size() && segments_[remove + 1].first_index - 1 <= index) {
    ++remove;
  }
  if (remove == 0) return;
  for (size_t i = 0; i < remove; ++i) {
    const std::string name = SegmentFileName(segments_[i].seq, segments_[i].first_index);
    WAL_CHECK_OK(env_->RemoveFile(JoinPath(dir_, name)), "remove " << name);
  }
  WAL_CHECK_OK(env_->SyncDir(dir_), "fsync of directory " << dir_);
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(remove));
}

std::vector<std::string> Wal::SegmentFiles() const {
  std::vector<std::string> names;
  for (const Segment& s : segments_) names.push_back(SegmentFileName(s.seq, s.first_index));
  return names;
}

}  // namespace cairn::wal
