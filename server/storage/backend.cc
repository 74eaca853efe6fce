#include "server/storage/backend.h"

#include <cstring>

#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "server/base/check.h"
#include "server/base/encoding.h"
#include "server/base/failpoint.h"
#include "server/base/logging.h"

namespace cairn::storage {
namespace {

constexpr const char* kFamilies[] = {"default", "meta",  "latest",    "index",
                                     "rev",     "lease", "lease_keys"};
// Bounded memory: one block cache shared by all families, regardless of key count.
constexpr size_t kBlockCacheBytes = 64 << 20;
constexpr size_t kWriteBufferBytes = 32 << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> Backend::Open(const std::string& dir, base::Env* env) {
  std::unique_ptr<Backend> b(new Backend());
  b->dir_ = dir;
  b->env_ = env;
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.max_background_jobs = 2;
  options.max_open_files = 512;
  options.keep_log_file_num = 3;
  options.max_total_wal_size = kMaxWalBytes;
  options.wal_bytes_per_sync = kWalBytesPerSync;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.write_buffer_size = kWriteBufferBytes;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_options.compression = rocksdb::kLZ4Compression;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kFamilies) descriptors.emplace_back(name, cf_options);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, descriptors, &b->handles_, &raw);
  if (!s.ok()) return absl::InternalError("open " + dir + ": " + s.ToString());
  b->db_.reset(raw);
  return b;
}

Backend::~Backend() {
  if (db_) {
    // A clean close leaves no WAL to replay: the next open reads no log.
    rocksdb::FlushOptions flush;
    flush.allow_write_stall = true;
    rocksdb::Status flushed = db_->Flush(flush, handles_);
    if (!flushed.ok()) {
      CAIRN_LOG(kWarn, "storage") << "flush at close: " << flushed.ToString();
    }
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    rocksdb::Status s = db_->Close();
    (void)s;
  }
}

void Backend::Write(rocksdb::WriteBatch* batch) {
  if (before_write_) before_write_();
  rocksdb::WriteOptions wo;
  wo.sync = false;
  base::Stopwatch commit;
  rocksdb::Status s = db_->Write(wo, batch);
  if (int err = base::FailpointErrno("backend_write"); err != 0)
    s = rocksdb::Status::IOError("injected by CAIRN_FAILPOINTS", std::strerror(err));
  CAIRN_CHECK(s.ok()) << "rocksdb write failed: " << s.ToString();
  if (commit_seconds_ != nullptr) commit_seconds_->Observe(commit.ElapsedSeconds());
}

void Backend::SwitchMemtables(std::initializer_list<Cf> families) {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  for (Cf f : families) handles.push_back(cf(f));
  rocksdb::FlushOptions flush;
  flush.wait = false;
  flush.allow_write_stall = true;
  rocksdb::Status s = db_->Flush(flush, handles);
  // Only a speed-up: the writes that follow are as correct in the current memtables.
  if (!s.ok()) {
    CAIRN_LOG(kWarn, "storage") << "memtable switch: " << s.ToString();
  }
}

void Backend::Sync() {
  rocksdb::Status s = db_->SyncWAL();
  if (int err = base::FailpointErrno("backend_sync"); err != 0)
    s = rocksdb::Status::IOError("injected by CAIRN_FAILPOINTS", std::strerror(err));
  CAIRN_CHECK(s.ok()) << "rocksdb WAL sync failed: " << s.ToString();
  if (after_sync_) after_sync_();
}

int64_t Backend::ReadMetaInt(const std::string& name, int64_t missing) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(Cf::kMeta), name, &value);
  if (s.IsNotFound()) return missing;
  CAIRN_CHECK(s.ok() && value.size() == 8) << "meta " << name << ": " << s.ToString();
  return static_cast<int64_t>(base::GetBE64(value));
}

std::string Backend::ReadMetaString(const std::string& name) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(Cf::kMeta), name, &value);
  if (s.IsNotFound()) return "";
  CAIRN_CHECK(s.ok()) << "meta " << name << ": " << s.ToString();
  return value;
}

int64_t Backend::SizeBytes() {
  uint64_t total = 0;
  for (auto* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &v)) total += v;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kCurSizeAllMemTables, &v)) total += v;
  }
  return static_cast<int64_t>(total);
}

}  // namespace cairn::storage
