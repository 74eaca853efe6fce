#include "server/main/restore.h"

#include <filesystem>
#include <fstream>
#include <memory>

#include "server/etcdserver/alarms.h"
#include "server/etcdserver/maintenance.h"
#include "server/main/flags.h"
#include "server/storage/backend.h"
#include "server/storage/snapshot.h"

namespace cairn::main {
namespace {

// Copies the first `n` bytes of `from` to `to`.
absl::Status CopyPrefix(const std::string& from, const std::string& to, uint64_t n) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  if (!in || !out) return absl::InternalError("cannot copy " + from + " to " + to);
  std::string buf(1 << 20, '\0');
  while (n > 0) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, buf.size()));
    if (!in.read(buf.data(), static_cast<std::streamsize>(k)) ||
        !out.write(buf.data(), static_cast<std::streamsize>(k))) {
      return absl::InternalError("cannot copy " + from + " to " + to);
    }
    n -= k;
  }
  out.flush();
  return out ? absl::OkStatus() : absl::InternalError("cannot write " + to);
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
absl::Status ResetForNewCluster(storage::Backend* b) {
  rocksdb::WriteBatch wb;
  for (const char* prefix : {"members/", "removed/", etcdserver::kAlarmPrefix}) {
    DeletePrefix(b, prefix, &wb);
  }
  for (const char* key : {"applied_index", "cluster_id"}) {
    (void)wb.Delete(b->cf(storage::Cf::kMeta), key);
  }
  b->Write(&wb);
  b->Sync();
  return absl::OkStatus();
}

}  // namespace

absl::Status RunSnapshotCommand(const std::vector<std::string>& args) {
  if (args.size() < 2 || args[0] != "restore") {
    return absl::InvalidArgumentError(
        "usage: cairn snapshot restore <filename> --data-dir <dir> --name <name> "
        "--initial-cluster <name=url,...> --initial-cluster-token <token> "
        "--initial-advertise-peer-urls <urls>");
  }
  const std::string file = args[1];
  std::vector<std::string> rest(args.begin() + 2, args.end());
  auto flags = ParseFlags(rest);
  if (!flags.ok()) return flags.status();
  std::string data_dir = flags->server.data_dir;
  if (data_dir.empty()) data_dir = flags->server.name + ".cairn";

  auto dump_bytes = etcdserver::VerifyClientSnapshot(file);
  if (!dump_bytes.ok()) return dump_bytes.status();
  std::error_code ec;
  if (std::filesystem::exists(data_dir, ec)) {
    return absl::AlreadyExistsError("data-dir \"" + data_dir + "\" exists");
  }
  std::filesystem::create_directories(data_dir + "/member/snap", ec);
  if (ec) return absl::InternalError("create " + data_dir + ": " + ec.message());
  auto fail = [&](absl::Status st) {
    std::filesystem::remove_all(data_dir, ec);  // leave no half-made data dir behind
    return st;
  };
  const std::string dump = data_dir + "/member/snap/restore.dump";
  if (absl::Status st = CopyPrefix(file, dump, *dump_bytes); !st.ok()) return fail(st);
  {
    auto backend = storage::Backend::Open(data_dir + "/member/db");
    if (!backend.ok()) return fail(backend.status());
    absl::Status st = storage::InstallSnapshotFile(backend->get(), dump);
    if (!st.ok()) {
      return fail(absl::DataLossError("snapshot file " + file +
                                      " is damaged: " + std::string(st.message())));
    }
    st = ResetForNewCluster(backend->get());
    if (!st.ok()) return fail(st);
  }
  std::filesystem::remove(dump, ec);
  return absl::OkStatus();
}

}  // namespace cairn::main
