// Snapshot file format and install (docs/snapshot_format.md) on raw backends: round trip with
// member-local keys kept, every truncation and byte flip rejected before anything changes, an
// install interrupted after any number of batches finished by ResumePendingInstall, a large dump
// streamed in bounded chunks, and readers of an older RocksDB snapshot unaffected.
#include "server/storage/snapshot.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "gtest/gtest.h"
#include "server/base/encoding.h"
#include "server/base/fault_injection_env.h"

namespace cairn::storage {
namespace {

constexpr int kFamilies = 6;
using Contents = std::map<std::pair<int, std::string>, std::string>;

std::string BE64(uint64_t x) {
  std::string s;
  base::PutBE64(&s, x);
  return s;
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-snapshot-XXXXXX";
    dir_ = mkdtemp(tmpl);
    src_ = OpenBackend("src");
    dst_ = OpenBackend("dst");
  }
  void TearDown() override {
    src_.reset();
    dst_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Backend> OpenBackend(const std::string& name) {
    auto b = Backend::Open(dir_ + "/" + name);
    EXPECT_TRUE(b.ok()) << b.status();
    return std::move(*b);
  }
  void Reopen(std::unique_ptr<Backend>* b, const std::string& name) {
    b->reset();
    *b = OpenBackend(name);
  }

  static void Put(Backend* b, Cf cf, const std::string& k, const std::string& v) {
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(batch.Put(b->cf(cf), k, v).ok());
    b->Write(&batch);
  }
  // Member identity plus replicated counters, as a member's meta family holds them.
  static void PutMeta(Backend* b, uint64_t member_id, const std::string& name, uint64_t term) {
    Put(b, Cf::kMeta, "member_id", BE64(member_id));
    Put(b, Cf::kMeta, "member_name", name);
    Put(b, Cf::kMeta, "term", BE64(term));
    Put(b, Cf::kMeta, "local/note", name + "-local");
  }
  // `n` keys spread over every family, with binary keys and values.
  static void Fill(Backend* b, int n, uint32_t seed, const std::string& tag) {
    std::mt19937 rng(seed);
    rocksdb::WriteBatch batch;
    for (int i = 0; i < n; ++i) {
      int cf = 1 + static_cast<int>(rng() % (kFamilies - 1));
      std::string key = tag + std::to_string(rng() % (n * 4));
      key.push_back('\0');
      key.push_back(static_cast<char>(0xFF));
      std::string value(rng() % 64, static_cast<char>(rng()));
      ASSERT_TRUE(batch.Put(b->cf(static_cast<Cf>(cf)), key, value).ok());
    }
    ASSERT_TRUE(batch.Put(b->cf(Cf::kMeta), "revision", BE64(n + 1)).ok());
    ASSERT_TRUE(batch.Put(b->cf(Cf::kMeta), "applied_index", BE64(n * 2)).ok());
    ASSERT_TRUE(batch.Put(b->cf(Cf::kMeta), "cluster_id", BE64(42)).ok());
    b->Write(&batch);
    b->Sync();
  }

  // Every key of every family; member-local meta keys only if `with_local`.
  static Contents Dump(Backend* b, bool with_local, const rocksdb::Snapshot* snap = nullptr) {
    Contents out;
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    for (int i = 0; i < kFamilies; ++i) {
      std::unique_ptr<rocksdb::Iterator> it(b->db()->NewIterator(ro, b->cf(static_cast<Cf>(i))));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        std::string k = it->key().ToString();
        if (i == 0 && !with_local && IsMemberLocalMetaKey(k)) continue;
        out[{i, k}] = it->value().ToString();
      }
      EXPECT_TRUE(it->status().ok());
    }
    return out;
  }
  static std::map<std::string, std::string> LocalKeys(Backend* b) {
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : Dump(b, true)) {
      if (k.first == 0 && IsMemberLocalMetaKey(k.second)) out[k.second] = v;
    }
    return out;
  }

  // Exports `b` at a fresh snapshot into a file; returns its path.
  std::string ExportToFile(Backend* b, const std::string& name, size_t chunk_bytes = 1 << 20) {
    std::string path = dir_ + "/" + name;
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    const rocksdb::Snapshot* snap = b->db()->GetSnapshot();
    absl::Status s = ExportSnapshot(
        b, snap,
        [&](std::string_view chunk) {
          f.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
          return f.good();
        },
        chunk_bytes);
    b->db()->ReleaseSnapshot(snap);
    EXPECT_TRUE(s.ok()) << s;
    f.close();
    return path;
  }
  std::string ReadFile(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  void WriteFile(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
  }

  // Source: replicated data plus its own identity. Receiver: other data and another identity.
  void FillBoth() {
    PutMeta(src_.get(), 1, "leader", 7);
    Fill(src_.get(), 300, 1, "s");
    PutMeta(dst_.get(), 2, "follower", 9);
    Fill(dst_.get(), 200, 2, "d");
  }
  // The receiver holds the source's replicated state and kept its own identity.
  void ExpectInstalled(const std::map<std::string, std::string>& dst_local) {
    EXPECT_EQ(Dump(dst_.get(), false), Dump(src_.get(), false));
    EXPECT_EQ(LocalKeys(dst_.get()), dst_local);
  }

  std::string dir_;
  std::unique_ptr<Backend> src_;
  std::unique_ptr<Backend> dst_;
};

// The snapshot file is read and synced through the Backend's Env: on FaultInjectionEnv an install
// works from the simulated file, and the file it installed from survives a crash (the install
// synced it and its directory before writing the marker), while an unsynced one loses its bytes.
TEST_F(SnapshotTest, InstallReadsAndSyncsThroughTheBackendsEnv) {
  FillBoth();
  auto dst_local = LocalKeys(dst_.get());
  base::FaultInjectionEnv env(1);
  ASSERT_TRUE(env.CreateDirs(dir_).ok());
  const std::string bytes = ReadFile(ExportToFile(src_.get(), "snap"));
  auto write = [&](const std::string& path) {
    auto f = env.NewWritableFile(path);
    ASSERT_TRUE(f.ok()) << f.status();
    ASSERT_TRUE((*f)->Append(bytes).ok());
  };
  const std::string path = dir_ + "/fi.snap";
  const std::string lost = dir_ + "/lost.snap";
  write(path);
  write(lost);
  EXPECT_TRUE(absl::IsNotFound(VerifySnapshotFile(path)));  // not on the real disk
  ASSERT_TRUE(VerifySnapshotFile(path, &env).ok());

  dst_.reset();
  auto b = Backend::Open(dir_ + "/dst", &env);
  ASSERT_TRUE(b.ok()) << b.status();
  dst_ = std::move(*b);
  ASSERT_TRUE(InstallSnapshotFile(dst_.get(), path).ok());
  ExpectInstalled(dst_local);

  env.SimulateCrash(base::FaultInjectionEnv::CrashMode::kDropUnsynced);
  EXPECT_TRUE(VerifySnapshotFile(path, &env).ok());
  // The install's directory sync made the other file's name durable too, but not its bytes.
  EXPECT_TRUE(absl::IsDataLoss(VerifySnapshotFile(lost, &env)));
}

TEST_F(SnapshotTest, RoundTripKeepsMemberLocalKeys) {
  FillBoth();
  auto dst_local = LocalKeys(dst_.get());
  ASSERT_EQ(dst_local.size(), 4u);
  std::string path = ExportToFile(src_.get(), "snap", /*chunk_bytes=*/1000);
  ASSERT_TRUE(VerifySnapshotFile(path).ok());
  ASSERT_TRUE(InstallSnapshotFile(dst_.get(), path).ok());
  ExpectInstalled(dst_local);
  EXPECT_EQ(dst_->ReadMetaString("member_name"), "follower");
  EXPECT_EQ(dst_->ReadMetaInt("applied_index", 0), 600);
  EXPECT_EQ(dst_->ReadMetaString(kPendingSnapshotKey), "");
  // Durable: the same after a reopen.
  Reopen(&dst_, "dst");
  ExpectInstalled(dst_local);
}

TEST_F(SnapshotTest, ReadsAMetaCounterFromTheFile) {
  Fill(src_.get(), 300, 7, "s");
  PutMeta(src_.get(), 1, "leader", 5);
  std::string path = ExportToFile(src_.get(), "snap");
  auto applied = ReadSnapshotMetaInt(path, "applied_index", -1);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 600);
  auto revision = ReadSnapshotMetaInt(path, "revision", -1);
  ASSERT_TRUE(revision.ok()) << revision.status();
  EXPECT_EQ(*revision, 301);
  // Member-local keys are not in the file; an absent key gives `missing`.
  EXPECT_EQ(*ReadSnapshotMetaInt(path, "term", -1), -1);
  EXPECT_EQ(*ReadSnapshotMetaInt(path, "no_such_counter", -7), -7);
  EXPECT_EQ(ReadSnapshotMetaInt(dir_ + "/missing", "applied_index", 0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SnapshotTest, ExportSkipsMemberLocalKeysAndInstallIgnoresThem) {
  FillBoth();
  Put(src_.get(), Cf::kMeta, "local/pending_snapshot", "/nowhere");
  std::string path = ExportToFile(src_.get(), "snap");
  std::string data = ReadFile(path);
  for (const char* k : {"member_id", "member_name", "term", "local/"}) {
    EXPECT_EQ(data.find(k), std::string::npos) << k << " travelled";
  }
  // An empty source: the receiver ends up empty except for its own identity.
  auto empty = OpenBackend("empty");
  std::string empty_path = ExportToFile(empty.get(), "empty-snap");
  auto dst_local = LocalKeys(dst_.get());
  ASSERT_TRUE(InstallSnapshotFile(dst_.get(), empty_path).ok());
  EXPECT_TRUE(Dump(dst_.get(), false).empty());
  EXPECT_EQ(LocalKeys(dst_.get()), dst_local);
}

TEST_F(SnapshotTest, ExportIsAtTheGivenSnapshot) {
  FillBoth();
  const rocksdb::Snapshot* snap = src_->db()->GetSnapshot();
  Contents at_snap = Dump(src_.get(), false, snap);
  Put(src_.get(), Cf::kLatest, "later", "x");
  std::string data;
  ASSERT_TRUE(ExportSnapshot(src_.get(), snap, [&](std::string_view c) {
                data.append(c);
                return true;
              }).ok());
  src_->db()->ReleaseSnapshot(snap);
  std::string path = dir_ + "/snap";
  WriteFile(path, data);
  ASSERT_TRUE(InstallSnapshotFile(dst_.get(), path).ok());
  EXPECT_EQ(Dump(dst_.get(), false), at_snap);
}

TEST_F(SnapshotTest, EveryTruncationAndByteFlipIsDataLossAndChangesNothing) {
  PutMeta(src_.get(), 1, "leader", 7);
  Fill(src_.get(), 20, 3, "s");
  PutMeta(dst_.get(), 2, "follower", 9);
  Fill(dst_.get(), 20, 4, "d");
  std::string good = ReadFile(ExportToFile(src_.get(), "good"));
  Contents before = Dump(dst_.get(), true);
  std::string path = dir_ + "/bad";
  for (size_t len = 0; len < good.size(); ++len) {
    WriteFile(path, good.substr(0, len));
    absl::Status s = VerifySnapshotFile(path);
    ASSERT_TRUE(absl::IsDataLoss(s)) << "truncated to " << len << ": " << s;
  }
  for (size_t pos = 0; pos < good.size(); ++pos) {
    std::string bad = good;
    bad[pos] ^= static_cast<char>(1 << (pos % 8));
    WriteFile(path, bad);
    absl::Status s = VerifySnapshotFile(path);
    ASSERT_TRUE(absl::IsDataLoss(s)) << "flipped byte " << pos << ": " << s;
  }
  WriteFile(path, good + "x");
  EXPECT_TRUE(absl::IsDataLoss(VerifySnapshotFile(path)));
  // The install refuses damaged files before touching the receiver.
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  WriteFile(path, flipped);
  EXPECT_TRUE(absl::IsDataLoss(InstallSnapshotFile(dst_.get(), path)));
  WriteFile(path, good.substr(0, good.size() - 3));
  EXPECT_TRUE(absl::IsDataLoss(InstallSnapshotFile(dst_.get(), path)));
  EXPECT_TRUE(absl::IsNotFound(InstallSnapshotFile(dst_.get(), dir_ + "/missing")));
  EXPECT_EQ(Dump(dst_.get(), true), before);
}

TEST_F(SnapshotTest, InterruptedInstallIsFinishedAtOpen) {
  FillBoth();
  auto dst_local = LocalKeys(dst_.get());
  std::string path = ExportToFile(src_.get(), "snap");
  // Stop after 0, 3, 6, ... 512-byte batches, as if the process died there, until the install
  // is short enough to finish.
  int64_t interrupted = 0;
  for (int64_t stop = 0;; stop += 3) {
    SCOPED_TRACE(stop);
    absl::Status s = internal::InstallSnapshotFileForTest(dst_.get(), path, 512, stop);
    if (s.ok()) {
      ExpectInstalled(dst_local);
      break;
    }
    ASSERT_TRUE(absl::IsAborted(s)) << s;
    ++interrupted;
    Reopen(&dst_, "dst");
    EXPECT_EQ(dst_->ReadMetaString(kPendingSnapshotKey), std::filesystem::absolute(path).string());
    ASSERT_TRUE(ResumePendingInstall(dst_.get()).ok());
    ExpectInstalled(dst_local);
    EXPECT_EQ(dst_->ReadMetaString(kPendingSnapshotKey), "");
    ASSERT_TRUE(ResumePendingInstall(dst_.get()).ok());  // nothing pending: no-op
    ExpectInstalled(dst_local);
    // Make the receiver differ again for the next round.
    Fill(dst_.get(), 50, static_cast<uint32_t>(stop + 10), "again");
  }
  EXPECT_GT(interrupted, 5);
}

TEST_F(SnapshotTest, ResumeFromMarkerAndPartialStateWrittenByHand) {
  FillBoth();
  auto dst_local = LocalKeys(dst_.get());
  std::string path = ExportToFile(src_.get(), "snap");
  // A crash after the marker and part of the load: some source keys, some stale receiver keys.
  Put(dst_.get(), Cf::kMeta, kPendingSnapshotKey, path);
  int n = 0;
  for (const auto& [k, v] : Dump(src_.get(), false)) {
    if (n++ % 3 == 0) Put(dst_.get(), static_cast<Cf>(k.first), k.second, v);
  }
  dst_->Sync();
  Reopen(&dst_, "dst");
  ASSERT_TRUE(ResumePendingInstall(dst_.get()).ok());
  ExpectInstalled(dst_local);
  // Resuming twice (a crash during the resume) gives the same result.
  Put(dst_.get(), Cf::kMeta, kPendingSnapshotKey, path);
  ASSERT_TRUE(ResumePendingInstall(dst_.get()).ok());
  ExpectInstalled(dst_local);
}

TEST_F(SnapshotTest, ResumeFailsWhenTheFileIsGoneOrDamaged) {
  FillBoth();
  std::string path = ExportToFile(src_.get(), "snap");
  Put(dst_.get(), Cf::kMeta, kPendingSnapshotKey, dir_ + "/gone");
  EXPECT_TRUE(absl::IsFailedPrecondition(ResumePendingInstall(dst_.get())));
  std::string data = ReadFile(path);
  WriteFile(path, data.substr(0, data.size() - 1));
  Put(dst_.get(), Cf::kMeta, kPendingSnapshotKey, path);
  EXPECT_TRUE(absl::IsDataLoss(ResumePendingInstall(dst_.get())));
  EXPECT_EQ(dst_->ReadMetaString(kPendingSnapshotKey), path);  // still pending
}

TEST_F(SnapshotTest, LargeDumpIsStreamedInBoundedChunks) {
  PutMeta(src_.get(), 1, "leader", 7);
  {
    rocksdb::WriteBatch batch;
    for (int i = 0; i < 50000; ++i) {
      std::string k = "key/" + std::to_string(i);
      ASSERT_TRUE(batch.Put(src_->cf(Cf::kLatest), k, std::string(100, 'v')).ok());
      ASSERT_TRUE(batch.Put(src_->cf(Cf::kRev), BE64(i) + BE64(0), "p" + k).ok());
    }
    src_->Write(&batch);
  }
  constexpr size_t kChunk = 64 << 10;
  std::string path = dir_ + "/big";
  std::ofstream f(path, std::ios::binary);
  std::vector<size_t> sizes;
  const rocksdb::Snapshot* snap = src_->db()->GetSnapshot();
  ASSERT_TRUE(ExportSnapshot(
                  src_.get(), snap,
                  [&](std::string_view c) {
                    sizes.push_back(c.size());
                    f.write(c.data(), static_cast<std::streamsize>(c.size()));
                    return true;
                  },
                  kChunk)
                  .ok());
  f.close();
  ASSERT_GT(sizes.size(), 50u);
  for (size_t i = 0; i + 1 < sizes.size(); ++i) ASSERT_EQ(sizes[i], kChunk);
  ASSERT_LE(sizes.back(), kChunk);
  ASSERT_TRUE(InstallSnapshotFile(dst_.get(), path).ok());
  EXPECT_EQ(Dump(dst_.get(), false), Dump(src_.get(), false));

  // A receiver that gives up mid-stream aborts the export.
  int calls = 0;
  absl::Status s = ExportSnapshot(
      src_.get(), snap, [&](std::string_view) { return ++calls < 3; }, kChunk);
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_EQ(calls, 3);
  src_->db()->ReleaseSnapshot(snap);
}

TEST_F(SnapshotTest, OlderReadersKeepTheOldState) {
  FillBoth();
  const rocksdb::Snapshot* old = dst_->db()->GetSnapshot();
  Contents before = Dump(dst_.get(), true, old);
  std::string path = ExportToFile(src_.get(), "snap");
  ASSERT_TRUE(InstallSnapshotFile(dst_.get(), path).ok());
  EXPECT_EQ(Dump(dst_.get(), true, old), before);
  EXPECT_NE(Dump(dst_.get(), true), before);
  dst_->db()->ReleaseSnapshot(old);
}

}  // namespace
}  // namespace cairn::storage
