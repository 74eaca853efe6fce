#include "server/wal/wal.h"

#include <stdlib.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/base/fault_injection_env.h"
#include "server/raft/storage.h"
#include "server/wal/record.h"
#include "tests/wal/wal_test_util.h"

namespace cairn::wal {
namespace {

using base::Env;
using base::FaultInjectionEnv;
using base::JoinPath;

using testing::MakeEntries;
using testing::MakeEntry;
using CrashMode = FaultInjectionEnv::CrashMode;

constexpr char kDir[] = "/wal";

// Segments far smaller than kSegmentBytes keep FaultInjectionEnv (which copies a file on each
// sync) fast; Small() makes rollovers frequent.
WalOptions Fast() {
  WalOptions options;
  options.segment_bytes = 16 << 10;
  return options;
}

class WalTest : public ::testing::Test {
 protected:
  WalOptions Small() {
    WalOptions options;
    options.segment_bytes = 1024;
    return options;
  }

  std::unique_ptr<Wal> Create(WalOptions options = Fast()) {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(&env_, kDir, options);
    EXPECT_TRUE(wal.ok()) << wal.status();
    return wal.ok() ? *std::move(wal) : nullptr;
  }

  // Reopens (after the caller dropped its Wal) and returns the replayed contents.
  WalContents Reopen(std::unique_ptr<Wal>* wal, WalOptions options = Fast()) {
    wal->reset();
    absl::StatusOr<std::unique_ptr<Wal>> opened = Wal::Open(&env_, kDir, options);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return {};
    *wal = *std::move(opened);
    return (*wal)->ReadAll();
  }

  std::string SegmentPath(const Wal& wal, size_t i) {
    return JoinPath(kDir, wal.SegmentFiles()[i]);
  }

  FaultInjectionEnv env_{42};
};

TEST_F(WalTest, CreateOpenEmpty) {
  auto wal = Create();
  EXPECT_EQ(wal->ReadAll(), WalContents{});
  EXPECT_EQ(wal->SegmentFiles(), std::vector<std::string>{SegmentFileName(0, 1)});
  EXPECT_EQ(wal->SegmentFiles()[0], "0000000000000000-0000000000000001.wal");
  EXPECT_EQ(Reopen(&wal), WalContents{});
  EXPECT_TRUE(WalExists(&env_, kDir));
  EXPECT_EQ(Wal::Create(&env_, kDir, Fast()).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Wal::Open(&env_, "/nowhere").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(env_.CreateDir("/empty").ok());
  EXPECT_EQ(Wal::Open(&env_, "/empty").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(WalExists(&env_, "/empty"));
}

TEST_F(WalTest, SaveSyncReopenRoundTrip) {
  auto wal = Create();
  raft::HardState hs{2, 1, 3};
  std::vector<raft::Entry> entries = MakeEntries(1, 5, 2);
  entries[2].type = raft::EntryType::kConfChange;
  entries[3].data = std::string(1000, '\0');  // zeros inside a payload are data, not a tail
  wal->Save(hs, entries);
  wal->Sync();
  WalContents contents = Reopen(&wal);
  EXPECT_EQ(contents.hard_state, hs);
  EXPECT_EQ(contents.entries, entries);
  EXPECT_EQ(contents.snapshot, raft::SnapshotMetadata{});
  EXPECT_EQ(wal->LastIndex(), 5u);
  // Appending continues where the log ended.
  wal->Save(raft::HardState{2, 1, 6}, MakeEntries(6, 7, 2));
  wal->Sync();
  contents = Reopen(&wal);
  EXPECT_EQ(contents.entries.size(), 7u);
  EXPECT_EQ(contents.hard_state.commit, 6u);
  EXPECT_EQ(ReadWal(&env_, kDir).value(), contents);
}

TEST_F(WalTest, OneFsyncPerReady) {
  auto wal = Create();
  const uint64_t before = env_.file_sync_count();
  // One Ready carrying many client writes, saved in several calls: still one fsync.
  for (raft::LogIndex i = 1; i <= 50; ++i)
    wal->Save(raft::HardState{1, 1, i - 1}, {MakeEntry(i, 1)});
  EXPECT_EQ(env_.file_sync_count(), before);  // Save alone never syncs (no rollover here)
  wal->Sync();
  EXPECT_EQ(env_.file_sync_count(), before + 1);
  wal->Sync();  // nothing pending: no fsync
  EXPECT_EQ(env_.file_sync_count(), before + 1);
  wal->Save(std::nullopt, {});
  wal->Sync();
  EXPECT_EQ(env_.file_sync_count(), before + 1);
}

TEST_F(WalTest, UnsyncedSavesAreLostOnCrashSyncedOnesAreKept) {
  auto wal = Create();
  wal->Save(raft::HardState{1, 1, 2}, MakeEntries(1, 3, 1));
  wal->Sync();
  wal->Save(raft::HardState{1, 1, 4}, MakeEntries(4, 6, 1));
  env_.SimulateCrash(CrashMode::kDropUnsynced);
  WalContents contents = Reopen(&wal);
  EXPECT_EQ(contents.entries, MakeEntries(1, 3, 1));
  EXPECT_EQ(contents.hard_state, (raft::HardState{1, 1, 2}));
}

TEST_F(WalTest, RolloverAcrossSegments) {
  auto wal = Create(Small());
  std::vector<raft::Entry> all;
  for (raft::LogIndex i = 1; i <= 200; i += 4) {
    std::vector<raft::Entry> batch = MakeEntries(i, i + 3, 1 + i / 50, 40);
    all.insert(all.end(), batch.begin(), batch.end());
    wal->Save(raft::HardState{1 + i / 50, 2, i}, batch);
    wal->Sync();
  }
  EXPECT_GT(wal->SegmentFiles().size(), 10u);
  // A record larger than a segment is fine: the segment grows past its preallocated size.
  std::vector<raft::Entry> big = {MakeEntry(201, 5, std::string(5000, 'b'))};
  all.push_back(big[0]);
  wal->Save(raft::HardState{5, 2, 201}, big);
  wal->Sync();
  const std::vector<std::string> segments = wal->SegmentFiles();
  WalContents contents = Reopen(&wal, Small());
  EXPECT_EQ(contents.entries, all);
  EXPECT_EQ(contents.hard_state, (raft::HardState{5, 2, 201}));
  EXPECT_EQ(wal->SegmentFiles(), segments);
  // Segment names carry consecutive sequence numbers and the first index expected in each.
  for (size_t i = 0; i < segments.size(); ++i) {
    EXPECT_EQ(segments[i].substr(0, 16), SegmentFileName(i, 0).substr(0, 16));
  }
}

TEST_F(WalTest, ConflictingSuffixIsOverwrittenOnReplay) {
  auto wal = Create(Small());
  wal->Save(raft::HardState{1, 1, 2}, MakeEntries(1, 10, 1, 30));
  wal->Sync();
  // A new leader (term 2) overwrites 6.. with a shorter suffix, then the log grows again and
  // rolls over, and a third leader overwrites 8.. in the next segment.
  wal->Save(raft::HardState{2, 2, 2}, MakeEntries(6, 7, 2, 30));
  wal->Sync();
  EXPECT_EQ(wal->LastIndex(), 7u);
  wal->Save(std::nullopt, MakeEntries(8, 30, 2, 30));
  wal->Sync();
  ASSERT_GT(wal->SegmentFiles().size(), 1u);
  wal->Save(raft::HardState{3, 3, 5}, MakeEntries(8, 9, 3));
  wal->Sync();

  std::vector<raft::Entry> expected = MakeEntries(1, 5, 1, 30);
  for (const raft::Entry& e : MakeEntries(6, 7, 2, 30)) expected.push_back(e);
  for (const raft::Entry& e : MakeEntries(8, 9, 3)) expected.push_back(e);
  WalContents contents = Reopen(&wal, Small());
  EXPECT_EQ(contents.entries, expected);
  EXPECT_EQ(contents.hard_state, (raft::HardState{3, 3, 5}));
  EXPECT_EQ(wal->LastIndex(), 9u);
}

TEST_F(WalTest, SnapshotMarkerKeepsTheSuffixOfAMatchingLog) {
  auto wal = Create();
  wal->Save(raft::HardState{2, 1, 8}, MakeEntries(1, 10, 2));
  raft::SnapshotMetadata meta{6, 2, raft::ConfState{{1, 2, 3}, {}}};
  wal->SaveSnapshot(meta);
  wal->Sync();
  WalContents contents = Reopen(&wal);
  EXPECT_EQ(contents.snapshot, meta);
  EXPECT_EQ(contents.entries, MakeEntries(7, 10, 2));
  EXPECT_EQ(contents.LastIndex(), 10u);
  // Entries at or below the snapshot are skipped when saved again.
  wal->Save(std::nullopt, MakeEntries(5, 11, 2));
  wal->Sync();
  EXPECT_EQ(Reopen(&wal).entries, MakeEntries(7, 11, 2));
}

TEST_F(WalTest, SnapshotMarkerFromTheLeaderReplacesAConflictingLog) {
  auto wal = Create();
  wal->Save(raft::HardState{1, 1, 3}, MakeEntries(1, 10, 1));
  wal->Sync();
  // A snapshot whose (index, term) this log does not hold: the log is replaced (Raft §7).
  raft::SnapshotMetadata meta{8, 3, raft::ConfState{{1, 2}, {}}};
  wal->SaveSnapshot(meta);
  wal->Save(raft::HardState{3, 2, 8}, {});
  EXPECT_EQ(wal->LastIndex(), 8u);
  wal->Save(std::nullopt, MakeEntries(9, 9, 3));
  wal->Sync();
  WalContents contents = Reopen(&wal);
  EXPECT_EQ(contents.snapshot, meta);
  EXPECT_EQ(contents.entries, MakeEntries(9, 9, 3));
  EXPECT_EQ(contents.hard_state, (raft::HardState{3, 2, 8}));

  // Past the end of the log: replaced too.
  raft::SnapshotMetadata later{50, 4, raft::ConfState{{1, 2}, {}}};
  wal->SaveSnapshot(later);
  wal->Save(raft::HardState{4, 2, 50}, {});
  wal->Sync();
  contents = Reopen(&wal);
  EXPECT_EQ(contents.snapshot, later);
  EXPECT_TRUE(contents.entries.empty());
  EXPECT_EQ(contents.LastIndex(), 50u);
}

TEST_F(WalTest, ReleaseRemovesSegmentsBelowTheSnapshot) {
  auto wal = Create(Small());
  for (raft::LogIndex i = 1; i <= 300; i += 10) {
    wal->Save(raft::HardState{1, 1, i + 9}, MakeEntries(i, i + 9, 1, 20));
    wal->Sync();
  }
  const size_t before = wal->SegmentFiles().size();
  ASSERT_GT(before, 5u);
  raft::SnapshotMetadata meta{150, 1, raft::ConfState{{1}, {}}};
  wal->SaveSnapshot(meta);
  const uint64_t dir_syncs = env_.dir_sync_count();
  wal->ReleaseTo(150);
  const std::vector<std::string> after = wal->SegmentFiles();
  EXPECT_LT(after.size(), before);
  EXPECT_GT(env_.dir_sync_count(), dir_syncs);
  // Each segment kept holds something the log still needs: its successor starts above 151.
  ASSERT_GE(after.size(), 2u);
  raft::LogIndex second_first = std::stoull(after[1].substr(17, 16), nullptr, 16);
  EXPECT_GT(second_first - 1, 150u);
  absl::StatusOr<std::vector<std::string>> files = env_.ListDir(kDir);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->size(), after.size());

  // Hard state and marker survive in the remaining segments' headers.
  env_.SimulateCrash(CrashMode::kDropUnsynced);
  WalContents contents = Reopen(&wal, Small());
  EXPECT_EQ(contents.snapshot, meta);
  EXPECT_EQ(contents.hard_state, (raft::HardState{1, 1, 300}));
  EXPECT_EQ(contents.entries, MakeEntries(151, 300, 1, 20));
  // Releasing everything below the last segment keeps the last one.
  wal->SaveSnapshot(raft::SnapshotMetadata{300, 1, raft::ConfState{{1}, {}}});
  wal->ReleaseTo(300);
  EXPECT_EQ(wal->SegmentFiles().size(), 1u);
  contents = Reopen(&wal, Small());
  EXPECT_EQ(contents.snapshot.index, 300u);
  EXPECT_TRUE(contents.entries.empty());
}

TEST_F(WalTest, TornTailIsCutAndAppendingAfterItWorks) {
  bool saw_torn = false, saw_lost = false, saw_whole = false;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    FaultInjectionEnv env(seed);
    auto wal = *Wal::Create(&env, kDir, Fast());
    wal->Save(raft::HardState{1, 1, 4}, MakeEntries(1, 4, 1, 100));
    wal->Sync();
    wal->Save(raft::HardState{1, 1, 8}, MakeEntries(5, 8, 1, 100));
    wal->Sync();
    // The last Ready's write reaches the file, and the machine dies instead of its fsync.
    wal->Save(raft::HardState{1, 1, 12}, MakeEntries(9, 12, 1, 100));
    const std::string segment = JoinPath(kDir, wal->SegmentFiles()[0]);
    env.ScheduleCrash(1, CrashMode::kTornWrites);
    wal->Sync();
    ASSERT_TRUE(env.crashed());
    wal.reset();
    env.Restart();

    std::string bytes;
    ASSERT_TRUE(env.ReadFile(segment, &bytes).ok());
    absl::StatusOr<std::unique_ptr<Wal>> reopened = Wal::Open(&env, kDir, Fast());
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    WalContents contents = (*reopened)->ReadAll();
    // Everything synced is there; of the lost Ready, a prefix of its records may be.
    ASSERT_GE(contents.LastIndex(), 8u);
    EXPECT_EQ(contents.entries, MakeEntries(1, contents.LastIndex(), 1, 100));
    EXPECT_GE(contents.hard_state.commit, 8u);
    absl::StatusOr<SegmentScan> scan = ScanSegment(bytes, true, segment);
    ASSERT_TRUE(scan.ok());
    saw_torn |= scan->torn;
    saw_lost |= contents.LastIndex() == 8;
    saw_whole |= contents.hard_state.commit == 12;

    // The tail was cut and zeroed: appending and another torn crash still recover cleanly.
    (*reopened)->Save(raft::HardState{2, 2, 9}, MakeEntries(contents.LastIndex() + 1, 14, 2));
    (*reopened)->Sync();
    (*reopened)->Save(std::nullopt, MakeEntries(15, 16, 2));
    env.ScheduleCrash(1, CrashMode::kTornWrites);
    (*reopened)->Sync();
    reopened->reset();
    env.Restart();
    absl::StatusOr<WalContents> after = ReadWal(&env, kDir);
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_GE(after->LastIndex(), 14u);
    EXPECT_EQ(after->hard_state, (raft::HardState{2, 2, 9}));
  }
  EXPECT_TRUE(saw_torn);
  EXPECT_TRUE(saw_lost);
  EXPECT_TRUE(saw_whole);
}

TEST_F(WalTest, CorruptMiddleRecordIsDataLoss) {
  auto wal = Create();
  for (raft::LogIndex i = 1; i <= 10; ++i) {
    wal->Save(raft::HardState{1, 1, i}, {MakeEntry(i, 1, std::string(50, 'x'))});
    wal->Sync();
  }
  const std::string segment = SegmentPath(*wal, 0);
  wal.reset();
  std::string bytes;
  ASSERT_TRUE(env_.ReadFile(segment, &bytes).ok());
  absl::StatusOr<SegmentScan> scan = ScanSegment(bytes, true, segment);
  ASSERT_TRUE(scan.ok());
  ASSERT_GT(scan->records.size(), 6u);
  // One flipped bit in the payload of the 5th record (an entry in the middle of the log).
  const Record& victim = scan->records[5];
  ASSERT_TRUE(env_.CorruptByte(segment, victim.offset + kRecordHeaderBytes + 20, 0x04).ok());

  absl::StatusOr<std::unique_ptr<Wal>> opened = Wal::Open(&env_, kDir, Fast());
  ASSERT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
  EXPECT_NE(opened.status().message().find(SegmentFileName(0, 1)), absl::string_view::npos);
  EXPECT_NE(opened.status().message().find("checksum mismatch"), absl::string_view::npos);
  EXPECT_NE(opened.status().message().find(std::to_string(victim.offset)), absl::string_view::npos);
  EXPECT_EQ(ReadWal(&env_, kDir).status().code(), absl::StatusCode::kDataLoss);
  // Open did not "repair" anything: the damage is still reported.
  EXPECT_EQ(Wal::Open(&env_, kDir, Fast()).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(WalTest, DamageInAnEarlierSegmentIsDataLossEvenAtItsEnd) {
  auto wal = Create(Small());
  for (raft::LogIndex i = 1; i <= 60; ++i) {
    wal->Save(raft::HardState{1, 1, i}, {MakeEntry(i, 1, std::string(30, 'y'))});
    wal->Sync();
  }
  ASSERT_GE(wal->SegmentFiles().size(), 3u);
  const std::string segment = SegmentPath(*wal, 1);
  wal.reset();
  std::string bytes;
  ASSERT_TRUE(env_.ReadFile(segment, &bytes).ok());
  absl::StatusOr<SegmentScan> scan = ScanSegment(bytes, false, segment);
  ASSERT_TRUE(scan.ok());
  // The last record of a full segment: nothing valid follows it in that file, but the segment
  // was fsynced before its successor existed, so this cannot be a torn write.
  ASSERT_TRUE(env_.CorruptByte(segment, scan->records.back().offset + 2, 0x80).ok());
  absl::StatusOr<std::unique_ptr<Wal>> opened = Wal::Open(&env_, kDir, Small());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
}

TEST_F(WalTest, MissingMiddleSegmentIsDataLoss) {
  auto wal = Create(Small());
  for (raft::LogIndex i = 1; i <= 60; ++i) {
    wal->Save(raft::HardState{1, 1, i}, {MakeEntry(i, 1, std::string(30, 'z'))});
    wal->Sync();
  }
  ASSERT_GE(wal->SegmentFiles().size(), 3u);
  const std::string segment = SegmentPath(*wal, 1);
  wal.reset();
  ASSERT_TRUE(env_.RemoveFile(segment).ok());
  absl::StatusOr<std::unique_ptr<Wal>> opened = Wal::Open(&env_, kDir, Small());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
}

TEST_F(WalTest, ReleasedTooMuchIsDataLoss) {
  auto wal = Create(Small());
  for (raft::LogIndex i = 1; i <= 60; ++i) {
    wal->Save(raft::HardState{1, 1, i}, {MakeEntry(i, 1, std::string(30, 'z'))});
    wal->Sync();
  }
  const std::string first = SegmentPath(*wal, 0);
  wal.reset();
  // Removing the oldest segment without a snapshot covering it loses entries 1..k.
  ASSERT_TRUE(env_.RemoveFile(first).ok());
  absl::StatusOr<WalContents> contents = ReadWal(&env_, kDir);
  EXPECT_EQ(contents.status().code(), absl::StatusCode::kDataLoss) << contents.status();
}

TEST_F(WalTest, LeftoverTemporarySegmentIsRemovedOnOpen) {
  auto wal = Create();
  wal->Save(raft::HardState{1, 1, 1}, {MakeEntry(1, 1)});
  wal->Sync();
  wal.reset();
  const std::string temp = JoinPath(kDir, SegmentFileName(1, 2) + ".tmp");
  {
    auto file = *env_.NewWritableFile(temp);
    ASSERT_TRUE(file->Append("half a header").ok());
  }
  WalContents contents = Reopen(&wal);
  EXPECT_EQ(contents.entries, MakeEntries(1, 1, 1));
  EXPECT_FALSE(env_.FileExists(temp));
  EXPECT_EQ(wal->SegmentFiles().size(), 1u);
}

TEST_F(WalTest, LoadIntoStorageRebuildsRaftStorage) {
  auto wal = Create();
  wal->Save(raft::HardState{2, 1, 9}, MakeEntries(1, 12, 2));
  raft::SnapshotMetadata meta{5, 2, raft::ConfState{{1, 2, 3}, {4}}};
  wal->SaveSnapshot(meta);
  wal->Sync();
  WalContents contents = Reopen(&wal);
  raft::MemoryStorage storage;
  ASSERT_TRUE(LoadIntoStorage(contents, "state", &storage).ok());
  EXPECT_EQ(storage.FirstIndex(), 6u);
  EXPECT_EQ(storage.LastIndex(), 12u);
  EXPECT_EQ(storage.TermAt(5).value(), 2u);
  EXPECT_EQ(storage.hard_state(), (raft::HardState{2, 1, 9}));
  absl::StatusOr<raft::InitialState> initial = storage.GetInitialState();
  ASSERT_TRUE(initial.ok());
  EXPECT_EQ(initial->conf_state, meta.conf_state);
  EXPECT_EQ(storage.GetSnapshot()->data, "state");
  EXPECT_EQ(storage.Entries(6, 13, raft::kNoLimit).value(), MakeEntries(6, 12, 2));
}

TEST_F(WalTest, FailedFsyncOrWriteIsFatal) {
  auto wal = Create();
  wal->Save(raft::HardState{1, 1, 1}, {MakeEntry(1, 1)});
  env_.set_fail_syncs(true);
  EXPECT_DEATH(wal->Sync(), "wal: fsync");
  env_.set_fail_syncs(false);
  env_.set_fail_writes(true);
  EXPECT_DEATH(wal->Sync(), "wal: write");
  env_.set_fail_writes(false);
  wal->Sync();
}

TEST_F(WalTest, ApiMisuseIsAProgrammerError) {
  auto wal = Create();
  wal->Save(raft::HardState{1, 1, 1}, {MakeEntry(1, 1)});
  EXPECT_DEATH(wal->Save(std::nullopt, {MakeEntry(3, 1)}), "after last index");
  EXPECT_DEATH(wal->ReleaseTo(1), "past the snapshot index");
  wal->SaveSnapshot(raft::SnapshotMetadata{1, 1, {}});
  EXPECT_DEATH(wal->SaveSnapshot(raft::SnapshotMetadata{1, 1, {}}), "not newer");
}

// The same round trip on the real file system (real preallocation, rename and fsync).
TEST(WalPosixTest, RoundTripRolloverReleaseOnDisk) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string templ = std::string(base != nullptr ? base : "/tmp") + "/cairn_wal_XXXXXX";
  ASSERT_NE(::mkdtemp(templ.data()), nullptr);
  const std::string dir = JoinPath(templ, "wal");
  Env* env = Env::Default();
  WalOptions options;
  options.segment_bytes = 4096;
  {
    auto wal = *Wal::Create(env, dir, options);
    for (raft::LogIndex i = 1; i <= 100; i += 5) {
      wal->Save(raft::HardState{1, 1, i + 4}, MakeEntries(i, i + 4, 1, 100));
      wal->Sync();
    }
    EXPECT_GT(wal->SegmentFiles().size(), 2u);
    wal->SaveSnapshot(raft::SnapshotMetadata{60, 1, raft::ConfState{{1}, {}}});
    wal->ReleaseTo(60);
  }
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(env, dir, options);
  ASSERT_TRUE(wal.ok()) << wal.status();
  WalContents contents = (*wal)->ReadAll();
  EXPECT_EQ(contents.snapshot.index, 60u);
  EXPECT_EQ(contents.entries, MakeEntries(61, 100, 1, 100));
  EXPECT_EQ(contents.hard_state, (raft::HardState{1, 1, 100}));
  for (const std::string& name : (*wal)->SegmentFiles()) {
    ASSERT_TRUE(env->RemoveFile(JoinPath(dir, name)).ok());
  }
  wal->reset();
  ::rmdir(dir.c_str());
  ::rmdir(templ.c_str());
}

}  // namespace
}  // namespace cairn::wal
