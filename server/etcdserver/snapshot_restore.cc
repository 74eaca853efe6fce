#include "server/etcdserver/snapshot_restore.h"

#include <filesystem>
#include <memory>

#include "server/etcdserver/alarms.h"
#include "server/etcdserver/maintenance.h"
#include "server/storage/backend.h"
#include "server/storage/snapshot.h"

namespace cairn::etcdserver {
namespace {

constexpr size_t kCopyChunkBytes = 1 << 20;

// Copies the first `n` bytes of `from` to `to`.
absl::Status CopyPrefix(base::Env* env, const std::string& from, const std::string& to,
                        uint64_t n) {
  auto in = env->NewSequentialFile(from);
  if (!in.ok()) return in.status();
  auto out = env->NewWritableFile(to);
  if (!out.ok()) return out.status();
  std::string buf;
  while (n > 0) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, kCopyChunkBytes));
    if (absl::Status st = (*in)->Read(k, &buf); !st.ok()) return st;
    if (buf.size() != k) return absl::DataLossError("snapshot file " + from + " truncated");
    if (absl::Status st = (*out)->Append(buf); !st.ok()) return st;
    n -= k;
  }
  return (*out)->Sync();
}

// Deletes every `meta` key under `prefix` into `wb`.
void DeletePrefix(storage::Backend* b, const std::string& prefix, rocksdb::WriteBatch* wb) {
  std::unique_ptr<rocksdb::Iterator> it(
      b->db()->NewIterator(rocksdb::ReadOptions(), b->cf(storage::Cf::kMeta)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    (void)wb->Delete(b->cf(storage::Cf::kMeta), it->key());
  }
}

// The store of the snapshot, made ready for a new cluster: no membership, no alarms, no applied
// index (the new cluster's log starts at 1 and adds its members by conf changes, as a first
// start does), the keys, leases and revisions kept.
void ResetForNewCluster(storage::Backend* b) {
  rocksdb::WriteBatch wb;
  for (const char* prefix : {"members/", "removed/", kAlarmPrefix}) DeletePrefix(b, prefix, &wb);
  for (const char* key : {"applied_index", "cluster_id"}) {
    (void)wb.Delete(b->cf(storage::Cf::kMeta), key);
  }
  b->Write(&wb);
  b->Sync();
}

absl::Status Install(const std::string& file, const std::string& data_dir, uint64_t dump_bytes,
                     base::Env* env) {
  const std::string snap_dir = data_dir + "/member/snap";
  if (absl::Status st = env->CreateDirs(snap_dir); !st.ok()) return st;
  const std::string dump = snap_dir + "/restore.dump";
  if (absl::Status st = CopyPrefix(env, file, dump, dump_bytes); !st.ok()) return st;
  auto backend = storage::Backend::Open(data_dir + "/member/db");
  if (!backend.ok()) return backend.status();
  if (absl::Status st = storage::InstallSnapshotFile(backend->get(), dump); !st.ok()) {
    return absl::DataLossError("snapshot file " + file +
                               " is damaged: " + std::string(st.message()));
  }
  ResetForNewCluster(backend->get());
  return env->RemoveFile(dump);
}

}  // namespace

absl::Status RestoreClientSnapshot(const std::string& file, const std::string& data_dir,
                                   base::Env* env) {
  auto dump_bytes = VerifyClientSnapshot(file, env);
  if (!dump_bytes.ok()) return dump_bytes.status();
  if (env->FileExists(data_dir)) {
    return absl::AlreadyExistsError("data-dir \"" + data_dir + "\" exists");
  }
  absl::Status st = Install(file, data_dir, *dump_bytes, env);
  if (!st.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir, ec);  // leave no half-made data dir behind
  }
  return st;
}

}  // namespace cairn::etcdserver
