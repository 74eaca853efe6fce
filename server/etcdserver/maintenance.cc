#include "server/etcdserver/maintenance.h"

#include <openssl/evp.h>

#include <memory>
#include <vector>

#include "server/base/crc32c.h"
#include "server/base/errors.h"
#include "server/storage/encoding.h"
#include "server/storage/snapshot.h"

namespace cairn::etcdserver {

using base::ErrorKind;
using base::MakeError;

namespace {

uint64_t DecodeBE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Streams chunks of at most `chunk_bytes`, counting what remains of `total`.
class Chunker {
 public:
  Chunker(uint64_t total, size_t chunk_bytes,
          const std::function<bool(std::string_view, uint64_t)>& sink)
      : remaining_(total), chunk_bytes_(chunk_bytes), sink_(sink) {}
  bool Add(std::string_view data) {
    while (!data.empty()) {
      size_t n = std::min(data.size(), chunk_bytes_ - buf_.size());
      buf_.append(data.data(), n);
      data.remove_prefix(n);
      if (buf_.size() == chunk_bytes_ && !Flush()) return false;
    }
    return true;
  }
  bool Flush() {
    if (buf_.empty()) return true;
    remaining_ -= buf_.size();
    bool ok = sink_(buf_, remaining_);
    buf_.clear();
    return ok;
  }

 private:
  uint64_t remaining_;
  size_t chunk_bytes_;
  const std::function<bool(std::string_view, uint64_t)>& sink_;
  std::string buf_;
};

struct Sha256 {
  Sha256() : ctx(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx); }
  void Update(std::string_view d) { EVP_DigestUpdate(ctx, d.data(), d.size()); }
  std::string Final() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, out, &n);
    return std::string(reinterpret_cast<char*>(out), n);
  }
  EVP_MD_CTX* ctx;
};

}  // namespace

absl::StatusOr<uint32_t> HashBackend(storage::Backend* backend, const mvcc::ReadView& view) {
  uint32_t crc = 0;
  absl::Status st = storage::ExportSnapshot(backend, view.snapshot.get(), [&](std::string_view c) {
    crc = base::crc32c::Extend(crc, c.data(), c.size());
    return true;
  });
  if (!st.ok()) return st;
  return crc;
}

absl::StatusOr<HashKvResult> HashKv(storage::Backend* backend, const mvcc::ReadView& view,
                                    int64_t revision) {
  HashKvResult out;
  out.revision = revision == 0 ? view.revision : revision;
  out.compact_revision = view.compact_revision;
  if (out.revision > view.revision) return MakeError(ErrorKind::kFutureRev);
  if (view.compact_revision >= 0 && out.revision < view.compact_revision) {
    return MakeError(ErrorKind::kCompacted);
  }
  const int64_t compacted = std::max<int64_t>(view.compact_revision, 0);
  rocksdb::ReadOptions ro;
  ro.snapshot = view.snapshot.get();
  std::unique_ptr<rocksdb::Iterator> it(
      backend->db()->NewIterator(ro, backend->cf(storage::Cf::kIndex)));
  uint32_t crc = 0;
  std::string current_key;  // ESC(key) of the entries being walked
  bool took_compacted = false;
  std::string value;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key(), v = it->value();
    if (k.size() < 9 || v.size() != 9) return absl::DataLossError("corrupt index entry");
    std::string_view escaped(k.data(), k.size() - 8);
    if (escaped != current_key) {
      current_key.assign(escaped);
      took_compacted = false;
    }
    const int64_t main = static_cast<int64_t>(~DecodeBE64(k.data() + k.size() - 8));
    const int64_t sub = static_cast<int64_t>(DecodeBE64(v.data()));
    const bool put = v[8] == 'p';
    if (main > out.revision) continue;
    if (main <= compacted) {
      // Only the newest revision at or below the compact revision counts, and only a put: what
      // compaction keeps, whether or not this member has physically removed the rest yet.
      if (took_compacted) continue;
      took_compacted = true;
      if (!put) continue;
    }
    // The resolved record (a live put's value is in `latest`): the hash of a revision stays the
    // same when its record is rewritten in full (docs/keyspace.md, "One copy of each value").
    absl::Status s = mvcc::ReadHistoryRecord(backend, ro, main, sub, &value);
    if (absl::IsNotFound(s))
      return absl::DataLossError("index entry without history: " + s.ToString());
    if (!s.ok()) return s;
    crc = base::crc32c::Extend(crc, k.data(), k.size());
    crc = base::crc32c::Extend(crc, v.data(), v.size());
    crc = base::crc32c::Extend(crc, value.data(), value.size());
  }
  if (!it->status().ok()) return absl::InternalError(it->status().ToString());
  out.hash = crc;
  return out;
}

int64_t QuotaSizeBytes(storage::Backend* backend) {
  // Every key of every family sorts below 16 bytes of 0xFF in practice (user keys are limited to
  // the request size, and the families' own keys start with a byte below 0xFF except a user key
  // made of 0xFF bytes, whose memtable bytes would be missed until the next flush).
  const std::string lo, hi(16, '\xff');
  rocksdb::Range all(lo, hi);
  uint64_t total = 0;
  for (storage::Cf cf : {storage::Cf::kMeta, storage::Cf::kLatest, storage::Cf::kIndex,
                         storage::Cf::kRev, storage::Cf::kLease, storage::Cf::kLeaseKeys}) {
    uint64_t v = 0;
    if (backend->db()->GetIntProperty(backend->cf(cf), rocksdb::DB::Properties::kLiveSstFilesSize,
                                      &v)) {
      total += v;
    }
    uint64_t count = 0, size = 0;
    backend->db()->GetApproximateMemTableStats(backend->cf(cf), all, &count, &size);
    total += size;
  }
  return static_cast<int64_t>(total);
}

absl::Status Defragment(storage::Backend* backend) {
  rocksdb::CompactRangeOptions o;
  o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  o.exclusive_manual_compaction = false;  // background compactions and writes go on
  for (storage::Cf cf : {storage::Cf::kMeta, storage::Cf::kLatest, storage::Cf::kIndex,
                         storage::Cf::kRev, storage::Cf::kLease, storage::Cf::kLeaseKeys}) {
    rocksdb::Status s = backend->db()->CompactRange(o, backend->cf(cf), nullptr, nullptr);
    if (!s.ok()) return absl::InternalError("defragment: " + s.ToString());
  }
  return absl::OkStatus();
}

absl::Status StreamClientSnapshot(storage::Backend* backend, const mvcc::ReadView& view,
                                  size_t chunk_bytes,
                                  const std::function<bool(std::string_view, uint64_t)>& sink) {
  // Two passes over the same RocksDB snapshot: the first only measures the dump, so every chunk
  // carries the exact remaining_bytes without a temporary file.
  uint64_t dump_bytes = 0;
  absl::Status st = storage::ExportSnapshot(backend, view.snapshot.get(), [&](std::string_view c) {
    dump_bytes += c.size();
    return true;
  });
  if (!st.ok()) return st;
  const uint64_t padding = (kSnapshotAlign - dump_bytes % kSnapshotAlign) % kSnapshotAlign;
  const uint64_t total = dump_bytes + padding + kSnapshotHashBytes;
  Sha256 sha;
  Chunker out(total, chunk_bytes, sink);
  st = storage::ExportSnapshot(backend, view.snapshot.get(), [&](std::string_view c) {
    sha.Update(c);
    return out.Add(c);
  });
  if (!st.ok()) return st;
  std::string zeros(padding, '\0');
  sha.Update(zeros);
  if (!out.Add(zeros) || !out.Flush()) return absl::AbortedError("snapshot stream canceled");
  // The checksum travels alone in the last message, as etcd sends it.
  if (!out.Add(sha.Final()) || !out.Flush()) return absl::AbortedError("snapshot stream canceled");
  return absl::OkStatus();
}

namespace {

constexpr size_t kReadChunkBytes = 1 << 20;  // a snapshot file is read in pieces of this size

// Reads exactly `n` bytes into *out; false at a short read or an error.
bool ReadExactly(base::SequentialFile* f, size_t n, std::string* out) {
  return f->Read(n, out).ok() && out->size() == n;
}

// Reads and drops `n` bytes; false when the file ends first.
bool Skip(base::SequentialFile* f, uint64_t n) {
  std::string buf;
  while (n > 0) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, kReadChunkBytes));
    if (!ReadExactly(f, k, &buf)) return false;
    n -= k;
  }
  return true;
}

}  // namespace

absl::StatusOr<uint64_t> VerifyClientSnapshot(const std::string& path, base::Env* env) {
  auto file_size = env->GetFileSize(path);
  if (!file_size.ok()) return absl::NotFoundError("snapshot file " + path + " not found");
  const uint64_t size = *file_size;
  if (size < kSnapshotHashBytes || size % kSnapshotAlign != kSnapshotHashBytes) {
    return absl::DataLossError("snapshot file " + path + " has no sha256 checksum (size " +
                               std::to_string(size) + " is not a multiple of 512 plus 32)");
  }
  auto in = env->NewSequentialFile(path);
  if (!in.ok()) return absl::NotFoundError("snapshot file " + path + " not found");
  Sha256 sha;
  std::string buf;
  for (uint64_t left = size - kSnapshotHashBytes; left > 0;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, kReadChunkBytes));
    if (!ReadExactly(in->get(), n, &buf)) {
      return absl::DataLossError("snapshot file " + path + ": read error");
    }
    sha.Update(buf);
    left -= n;
  }
  if (!ReadExactly(in->get(), kSnapshotHashBytes, &buf) || sha.Final() != buf) {
    return absl::DataLossError("snapshot file " + path + ": sha256 checksum mismatch");
  }
  // The dump ends with its trailer (0xFF, BE64 count, BE32 crc), then at most 511 bytes of
  // padding: find its end by walking the record framing (the restore verifies the dump itself).
  auto walk = env->NewSequentialFile(path);
  if (!walk.ok()) return walk.status();
  if (!ReadExactly(walk->get(), 12, &buf)) return absl::DataLossError("snapshot file too short");
  uint64_t pos = 12;
  const uint64_t end = size - kSnapshotHashBytes;
  while (true) {
    if (pos >= end || !ReadExactly(walk->get(), 1, &buf)) {
      return absl::DataLossError("snapshot dump truncated");
    }
    pos += 1;
    if (static_cast<unsigned char>(buf[0]) == 0xFF) {
      pos += 12;
      break;
    }
    if (!ReadExactly(walk->get(), 8, &buf)) return absl::DataLossError("snapshot dump truncated");
    uint64_t kl = 0, vl = 0;
    for (int i = 0; i < 4; ++i) kl = (kl << 8) | static_cast<unsigned char>(buf[i]);
    for (int i = 4; i < 8; ++i) vl = (vl << 8) | static_cast<unsigned char>(buf[i]);
    pos += 8;
    if (kl + vl > end - std::min(end, pos) || !Skip(walk->get(), kl + vl)) {
      return absl::DataLossError("snapshot dump truncated");
    }
    pos += kl + vl;
  }
  if (pos > end || end - pos >= kSnapshotAlign) {
    return absl::DataLossError("snapshot file " + path + ": bad padding after the dump");
  }
  return pos;
}

MaintenanceWorker::MaintenanceWorker() : thread_([this] { Loop(); }) {}

void MaintenanceWorker::Run(std::function<void(bool)> task) {
  {
    absl::MutexLock l(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(task));
      return;
    }
  }
  task(true);
}

void MaintenanceWorker::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void MaintenanceWorker::Loop() {
  while (true) {
    std::function<void(bool)> task;
    bool stopping;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](MaintenanceWorker* w)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) { return w->stopping_ || !w->queue_.empty(); },
          this));
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      stopping = stopping_;
    }
    task(stopping);
  }
}

}  // namespace cairn::etcdserver
