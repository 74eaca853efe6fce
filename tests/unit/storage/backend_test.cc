// Backend: RocksDB's own WAL stays within kMaxWalBytes although `meta` is written with every batch
// (and so never fills its write buffer), and a clean close leaves no WAL for the next open.
#include "server/storage/backend.h"

#include <chrono>
#include <filesystem>
#include <thread>

#include "gtest/gtest.h"

namespace cairn::storage {
namespace {

class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-backend-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  uint64_t WalBytes() const {
    uint64_t total = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      if (e.path().extension() == ".log") total += e.file_size();
    }
    return total;
  }

  // Writes `bytes` as batches of one large `latest` value plus a small `meta` counter, the shape
  // of the applier's batches.
  static void Load(Backend* b, uint64_t bytes) {
    const std::string value(256 << 10, 'v');
    for (uint64_t i = 0; i * value.size() < bytes; ++i) {
      rocksdb::WriteBatch batch;
      ASSERT_TRUE(batch.Put(b->cf(Cf::kLatest), "key" + std::to_string(i), value).ok());
      ASSERT_TRUE(batch.Put(b->cf(Cf::kMeta), "applied_index", std::to_string(i)).ok());
      b->Write(&batch);
    }
  }

  // Waits (bounded) until RocksDB runs and owes no flush, so obsolete WAL files are gone.
  static void WaitForFlushes(Backend* b) {
    for (int i = 0; i < 3000; ++i) {
      uint64_t running = 0, pending = 0;
      bool idle = true;
      for (Cf cf : {Cf::kMeta, Cf::kLatest}) {
        ASSERT_TRUE(b->db()->GetIntProperty(b->cf(cf), "rocksdb.num-running-flushes", &running));
        ASSERT_TRUE(
            b->db()->GetIntProperty(b->cf(cf), "rocksdb.mem-table-flush-pending", &pending));
        idle = idle && running == 0 && pending == 0;
      }
      if (idle) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "flushes still running after 30 s";
  }

  std::string dir_;
};

TEST_F(BackendTest, RocksDbWalStaysBounded) {
  auto b = Backend::Open(dir_);
  ASSERT_TRUE(b.ok()) << b.status();
  Load(b->get(), 3 * kMaxWalBytes);
  WaitForFlushes(b->get());
  // The bound, plus the file being written when the last flush was chosen.
  EXPECT_LE(WalBytes(), kMaxWalBytes + (32u << 20)) << "RocksDB WAL bytes";
}

TEST_F(BackendTest, CleanCloseLeavesNoWalToReplay) {
  {
    auto b = Backend::Open(dir_);
    ASSERT_TRUE(b.ok()) << b.status();
    Load(b->get(), 8 << 20);
    EXPECT_GT(WalBytes(), 8u << 20);
  }
  EXPECT_EQ(WalBytes(), 0u);
  auto b = Backend::Open(dir_);
  ASSERT_TRUE(b.ok()) << b.status();
  std::string v;
  ASSERT_TRUE((*b)->db()->Get(rocksdb::ReadOptions(), (*b)->cf(Cf::kLatest), "key31", &v).ok());
  EXPECT_EQ(v.size(), 256u << 10);
  EXPECT_EQ((*b)->ReadMetaString("applied_index"), "31");
}

}  // namespace
}  // namespace cairn::storage
