#include "server/storage/snapshot.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "server/base/check.h"
#include "server/base/crc32c.h"
#include "server/base/encoding.h"
#include "server/base/logging.h"

namespace cairn::storage {
namespace {

namespace crc32c = base::crc32c;
using base::GetBE32;
using base::GetBE64;
using base::PutBE32;
using base::PutBE64;

constexpr char kMagic[8] = {'C', 'A', 'I', 'R', 'N', 'S', 'N', 'P'};
constexpr uint32_t kVersion = 1;
constexpr uint8_t kTrailerTag = 0xFF;
constexpr int kFamilyCount = 6;  // Cf::kMeta .. Cf::kLeaseKeys
// A damaged length must not make the reader allocate unbounded memory.
constexpr uint32_t kMaxFieldBytes = 512u << 20;
constexpr size_t kReadBufferBytes = 1 << 20;
constexpr size_t kLoadBatchBytes = 4 << 20;

// Buffers the stream and hands it to the sink in chunks of exactly `chunk_bytes`.
class ChunkWriter {
 public:
  ChunkWriter(const std::function<bool(std::string_view)>& sink, size_t chunk_bytes)
      : sink_(sink), chunk_bytes_(chunk_bytes) {}

  bool Append(std::string_view data) {
    crc_ = crc32c::Extend(crc_, data.data(), data.size());
    buf_.append(data.data(), data.size());
    size_t off = 0;
    while (buf_.size() - off >= chunk_bytes_) {
      if (!sink_(std::string_view(buf_).substr(off, chunk_bytes_))) return false;
      off += chunk_bytes_;
    }
    buf_.erase(0, off);
    return true;
  }
  // Sends what is left (shorter than a chunk).
  bool Finish() { return buf_.empty() || sink_(buf_); }
  uint32_t crc() const { return crc_; }

 private:
  const std::function<bool(std::string_view)>& sink_;
  size_t chunk_bytes_;
  std::string buf_;
  uint32_t crc_ = 0;
};

// Sequential reads of a snapshot file through a fixed buffer, with a running CRC-32C.
class FileReader {
 public:
  explicit FileReader(base::Env* env) : env_(env) {}

  absl::Status Open(const std::string& path) {
    path_ = path;
    auto file = env_->NewSequentialFile(path);
    if (!file.ok()) {
      if (absl::IsNotFound(file.status())) {
        return absl::NotFoundError("snapshot file " + path + " not found");
      }
      return absl::InternalError(std::string(file.status().message()));
    }
    file_ = std::move(*file);
    auto size = env_->GetFileSize(path);
    if (!size.ok()) return absl::InternalError(std::string(size.status().message()));
    remaining_ = *size;
    return absl::OkStatus();
  }

  // Bytes of the file not yet consumed (by size at open).
  uint64_t remaining() const { return remaining_; }
  uint32_t crc() const { return crc_; }
  const std::string& path() const { return path_; }

  // Reads exactly `n` bytes into *out (replacing it). kDataLoss if the file ends first.
  absl::Status Read(size_t n, std::string* out, bool update_crc = true) {
    out->clear();
    if (n > remaining_) return absl::DataLossError("snapshot file " + path_ + " is truncated");
    while (out->size() < n) {
      if (pos_ == buf_.size()) {
        absl::Status s = Fill();
        if (!s.ok()) return s;
        if (buf_.empty()) return absl::DataLossError("snapshot file " + path_ + " is truncated");
      }
      size_t take = std::min(n - out->size(), buf_.size() - pos_);
      out->append(buf_, pos_, take);
      pos_ += take;
    }
    remaining_ -= n;
    if (update_crc) crc_ = crc32c::Extend(crc_, out->data(), out->size());
    return absl::OkStatus();
  }

  // True when nothing follows (the file did not grow since it was opened either).
  absl::StatusOr<bool> AtEnd() {
    if (remaining_ > 0 || pos_ < buf_.size()) return false;
    absl::Status s = Fill();
    if (!s.ok()) return s;
    return buf_.empty();
  }

 private:
  absl::Status Fill() {
    pos_ = 0;
    absl::Status s = file_->Read(kReadBufferBytes, &buf_);
    if (!s.ok()) return absl::InternalError(std::string(s.message()));
    return absl::OkStatus();
  }

  base::Env* const env_;
  std::string path_;
  std::unique_ptr<base::SequentialFile> file_;
  std::string buf_;  // the last read, consumed from pos_
  size_t pos_ = 0;
  uint64_t remaining_ = 0;
  uint32_t crc_ = 0;
};

struct Record {
  Cf cf = Cf::kMeta;
  std::string key;
  std::string value;
};

// Parses a snapshot file record by record, checking everything docs/snapshot_format.md lists.
class Parser {
 public:
  explicit Parser(base::Env* env) : file_(env) {}

  absl::Status Open(const std::string& path) {
    absl::Status s = file_.Open(path);
    if (!s.ok()) return s;
    std::string header;
    s = file_.Read(sizeof(kMagic) + 4, &header);
    if (!s.ok()) return s;
    if (std::string_view(header).substr(0, sizeof(kMagic)) !=
        std::string_view(kMagic, sizeof(kMagic))) {
      return Corrupt("bad magic");
    }
    uint32_t version = GetBE32(std::string_view(header).substr(sizeof(kMagic)));
    if (version != kVersion) return Corrupt("unknown version " + std::to_string(version));
    return absl::OkStatus();
  }

  // Sets *done at the trailer, after checking it; else fills *r with the next record.
  absl::Status Next(Record* r, bool* done) {
    *done = false;
    absl::Status s = file_.Read(1, &scratch_);
    if (!s.ok()) return s;
    uint8_t tag = static_cast<uint8_t>(scratch_[0]);
    if (tag == kTrailerTag) {
      *done = true;
      return Trailer();
    }
    if (tag >= kFamilyCount) return Corrupt("bad column family id " + std::to_string(tag));
    s = file_.Read(8, &scratch_);
    if (!s.ok()) return s;
    uint32_t key_len = GetBE32(scratch_);
    uint32_t value_len = GetBE32(std::string_view(scratch_).substr(4));
    if (key_len > kMaxFieldBytes || value_len > kMaxFieldBytes ||
        uint64_t{key_len} + value_len > file_.remaining()) {
      return Corrupt("bad record length");
    }
    r->cf = static_cast<Cf>(tag);
    s = file_.Read(key_len, &r->key);
    if (s.ok()) s = file_.Read(value_len, &r->value);
    if (!s.ok()) return s;
    ++count_;
    return absl::OkStatus();
  }

 private:
  absl::Status Trailer() {
    absl::Status s = file_.Read(8, &scratch_);
    if (!s.ok()) return s;
    uint64_t count = GetBE64(scratch_);
    uint32_t crc = file_.crc();
    s = file_.Read(4, &scratch_, /*update_crc=*/false);
    if (!s.ok()) return s;
    if (GetBE32(scratch_) != crc) return Corrupt("checksum mismatch");
    if (count != count_) {
      return Corrupt("record count " + std::to_string(count) + " in trailer, " +
                     std::to_string(count_) + " read");
    }
    auto end = file_.AtEnd();
    if (!end.ok()) return end.status();
    if (!*end) return Corrupt("bytes after the trailer");
    return absl::OkStatus();
  }

  absl::Status Corrupt(const std::string& why) {
    return absl::DataLossError("snapshot file " + file_.path() + " is damaged: " + why);
  }

  FileReader file_;
  std::string scratch_;
  uint64_t count_ = 0;
};

// Makes the file and its directory entry durable: the pending marker will point at it.
absl::Status SyncFile(base::Env* env, const std::string& path) {
  auto file = env->ReopenWritableFile(path);
  if (!file.ok()) return absl::InternalError(std::string(file.status().message()));
  absl::Status s = (*file)->Sync();
  if (!s.ok()) return absl::InternalError(std::string(s.message()));
  s = env->SyncDir(std::filesystem::path(path).parent_path().string());
  if (!s.ok()) return absl::InternalError(std::string(s.message()));
  return absl::OkStatus();
}

// Deletes every key of every family except the member-local meta keys (the marker is one).
void ClearReplicatedState(Backend* b) {
  rocksdb::WriteBatch batch;
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  {
    std::unique_ptr<rocksdb::Iterator> it(b->db()->NewIterator(ro, b->cf(Cf::kMeta)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!IsMemberLocalMetaKey(it->key().ToStringView())) {
        CAIRN_CHECK(batch.Delete(b->cf(Cf::kMeta), it->key()).ok());
      }
    }
    CAIRN_CHECK(it->status().ok()) << it->status().ToString();
  }
  for (int i = 1; i < kFamilyCount; ++i) {
    rocksdb::ColumnFamilyHandle* cf = b->cf(static_cast<Cf>(i));
    std::unique_ptr<rocksdb::Iterator> it(b->db()->NewIterator(ro, cf));
    it->SeekToFirst();
    if (!it->Valid()) {
      CAIRN_CHECK(it->status().ok()) << it->status().ToString();
      continue;
    }
    std::string first = it->key().ToString();
    it->SeekToLast();
    CAIRN_CHECK(it->Valid()) << it->status().ToString();
    // [first, last + 0x00) holds every key from first to last inclusive: last + 0x00 is the
    // smallest key greater than last. One range tombstone, whatever the key count.
    std::string end = it->key().ToString();
    end.push_back('\0');
    CAIRN_CHECK(batch.DeleteRange(cf, first, end).ok());
  }
  b->Write(&batch);
}

// Steps 4-6 of the install (docs/snapshot_format.md): the marker is already durable.
absl::Status ClearAndLoad(Backend* b, const std::string& path, size_t batch_bytes,
                          int64_t stop_after_batches) {
  Parser parser(b->env());
  absl::Status s = parser.Open(path);
  if (!s.ok()) return s;
  ClearReplicatedState(b);
  rocksdb::WriteBatch batch;
  int64_t batches = 0;
  Record r;
  while (true) {
    bool done = false;
    s = parser.Next(&r, &done);
    if (!s.ok()) return s;
    if (done) break;
    if (r.cf == Cf::kMeta && IsMemberLocalMetaKey(r.key)) continue;
    CAIRN_CHECK(batch.Put(b->cf(r.cf), r.key, r.value).ok());
    if (batch.GetDataSize() >= batch_bytes) {
      if (stop_after_batches >= 0 && batches >= stop_after_batches) {
        return absl::AbortedError("snapshot install stopped by test after " +
                                  std::to_string(batches) + " batches");
      }
      b->Write(&batch);
      batch.Clear();
      ++batches;
    }
  }
  CAIRN_CHECK(batch.Delete(b->cf(Cf::kMeta), kPendingSnapshotKey).ok());
  b->Write(&batch);
  b->Sync();
  return absl::OkStatus();
}

absl::Status Install(Backend* b, const std::string& given_path, size_t batch_bytes,
                     int64_t stop_after_batches) {
  std::error_code ec;
  std::string path = std::filesystem::absolute(given_path, ec).string();
  if (ec) return absl::InternalError("absolute path of " + given_path + ": " + ec.message());
  absl::Status s = VerifySnapshotFile(path, b->env());
  if (!s.ok()) return s;
  s = SyncFile(b->env(), path);
  if (!s.ok()) return s;
  rocksdb::WriteBatch marker;
  CAIRN_CHECK(marker.Put(b->cf(Cf::kMeta), kPendingSnapshotKey, path).ok());
  b->Write(&marker);
  b->Sync();
  CAIRN_LOG(kInfo, "storage") << "installing snapshot " << path;
  return ClearAndLoad(b, path, batch_bytes, stop_after_batches);
}

}  // namespace

bool IsMemberLocalMetaKey(std::string_view key) {
  return key == "member_id" || key == "member_name" || key == "term" || key.starts_with("local/");
}

absl::Status ExportSnapshot(Backend* b, const rocksdb::Snapshot* snap,
                            const std::function<bool(std::string_view)>& sink, size_t chunk_bytes) {
  CAIRN_CHECK(snap != nullptr) << "ExportSnapshot needs a RocksDB snapshot";
  if (chunk_bytes == 0) return absl::InvalidArgumentError("chunk_bytes must be positive");
  ChunkWriter out(sink, chunk_bytes);
  auto aborted = [] { return absl::AbortedError("snapshot export aborted by its receiver"); };
  std::string header(kMagic, sizeof(kMagic));
  PutBE32(&header, kVersion);
  if (!out.Append(header)) return aborted();
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  ro.fill_cache = false;  // a full scan would evict the working set
  uint64_t count = 0;
  std::string framing;
  for (int i = 0; i < kFamilyCount; ++i) {
    Cf cf = static_cast<Cf>(i);
    std::unique_ptr<rocksdb::Iterator> it(b->db()->NewIterator(ro, b->cf(cf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view key = it->key().ToStringView();
      std::string_view value = it->value().ToStringView();
      if (cf == Cf::kMeta && IsMemberLocalMetaKey(key)) continue;
      CAIRN_CHECK(key.size() <= kMaxFieldBytes && value.size() <= kMaxFieldBytes)
          << "record too large for a snapshot";
      framing.clear();
      framing.push_back(static_cast<char>(i));
      PutBE32(&framing, static_cast<uint32_t>(key.size()));
      PutBE32(&framing, static_cast<uint32_t>(value.size()));
      if (!out.Append(framing) || !out.Append(key) || !out.Append(value)) return aborted();
      ++count;
    }
    if (!it->status().ok()) return absl::InternalError("snapshot scan: " + it->status().ToString());
  }
  std::string trailer(1, static_cast<char>(kTrailerTag));
  PutBE64(&trailer, count);
  if (!out.Append(trailer)) return aborted();
  std::string crc;
  PutBE32(&crc, out.crc());
  if (!out.Append(crc) || !out.Finish()) return aborted();
  return absl::OkStatus();
}

absl::Status VerifySnapshotFile(const std::string& path, base::Env* env) {
  Parser parser(env);
  absl::Status s = parser.Open(path);
  if (!s.ok()) return s;
  Record r;
  while (true) {
    bool done = false;
    s = parser.Next(&r, &done);
    if (!s.ok() || done) return s;
  }
}

absl::StatusOr<int64_t> ReadSnapshotMetaInt(const std::string& path, std::string_view name,
                                            int64_t missing, base::Env* env) {
  Parser parser(env);
  absl::Status s = parser.Open(path);
  if (!s.ok()) return s;
  Record r;
  int64_t value = missing;
  while (true) {
    bool done = false;
    s = parser.Next(&r, &done);
    if (!s.ok()) return s;
    if (done) return value;
    if (r.cf == Cf::kMeta && r.key == name && r.value.size() == 8) {
      value = static_cast<int64_t>(GetBE64(r.value));
    }
  }
}

absl::Status InstallSnapshotFile(Backend* b, const std::string& path) {
  return Install(b, path, kLoadBatchBytes, -1);
}

absl::Status ResumePendingInstall(Backend* b) {
  std::string path = b->ReadMetaString(kPendingSnapshotKey);
  if (path.empty()) return absl::OkStatus();
  CAIRN_LOG(kWarn, "storage") << "resuming interrupted install of snapshot " << path;
  absl::Status s = VerifySnapshotFile(path, b->env());
  if (absl::IsNotFound(s)) {
    return absl::FailedPreconditionError("interrupted snapshot install: file " + path +
                                         " is gone; the database holds a partial state");
  }
  if (!s.ok()) return s;
  return ClearAndLoad(b, path, kLoadBatchBytes, -1);
}

namespace internal {
absl::Status InstallSnapshotFileForTest(Backend* b, const std::string& path, size_t batch_bytes,
                                        int64_t stop_after_batches) {
  return Install(b, path, batch_bytes, stop_after_batches);
}
}  // namespace internal

}  // namespace cairn::storage
