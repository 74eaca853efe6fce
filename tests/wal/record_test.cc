#include "server/wal/record.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace cairn::wal {
namespace {

std::string Framed(RecordType type, std::string_view payload) {
  std::string out;
  AppendRecord(type, payload, &out);
  return out;
}

// Three records and `zeros` bytes of unwritten space.
std::string ThreeRecords(size_t zeros, std::vector<uint64_t>* offsets = nullptr) {
  std::string s;
  for (std::string_view payload : {"first", "the second record", ""}) {
    if (offsets != nullptr) offsets->push_back(s.size());
    AppendRecord(RecordType::kEntry, payload, &s);
  }
  s.append(zeros, '\0');
  return s;
}

TEST(RecordTest, FramingIsPaddedToEightBytes) {
  for (size_t n : {0u, 1u, 6u, 7u, 8u, 100u}) {
    std::string rec = Framed(RecordType::kEntry, std::string(n, 'x'));
    EXPECT_EQ(rec.size() % kRecordAlignment, 0u);
    EXPECT_EQ(rec.size(), FramedRecordBytes(n));
    EXPECT_GE(rec.size(), kRecordHeaderBytes + n);
  }
}

TEST(RecordTest, ScanRoundTripsRecords) {
  std::string s = ThreeRecords(0);
  absl::StatusOr<SegmentScan> scan = ScanSegment(s, /*is_last=*/false, "seg");
  ASSERT_TRUE(scan.ok()) << scan.status();
  ASSERT_EQ(scan->records.size(), 3u);
  EXPECT_EQ(scan->records[0].payload, "first");
  EXPECT_EQ(scan->records[1].payload, "the second record");
  EXPECT_EQ(scan->records[2].payload, "");
  EXPECT_EQ(scan->records[1].type, RecordType::kEntry);
  EXPECT_EQ(scan->end, s.size());
  EXPECT_FALSE(scan->torn);
}

TEST(RecordTest, ZeroTailIsACleanEnd) {
  std::string s = ThreeRecords(4096);
  for (bool is_last : {false, true}) {
    absl::StatusOr<SegmentScan> scan = ScanSegment(s, is_last, "seg");
    ASSERT_TRUE(scan.ok()) << scan.status();
    EXPECT_EQ(scan->records.size(), 3u);
    EXPECT_EQ(scan->end, s.size() - 4096);
    EXPECT_FALSE(scan->torn);
  }
}

TEST(RecordTest, PartialLastRecordIsATornTailInTheLastSegmentOnly) {
  std::vector<uint64_t> offsets;
  std::string full = ThreeRecords(0, &offsets);
  const std::string payload = "a record that was being written when power failed";
  std::string next = Framed(RecordType::kEntry, payload);
  // Every prefix of the fourth record that misses payload bytes, followed by zeros (preallocated)
  // or by nothing. (Only its padding missing, the record is complete: zeros are its padding.)
  for (size_t keep = 1; keep < kRecordHeaderBytes + payload.size(); ++keep) {
    for (size_t zeros : {0u, 64u}) {
      std::string s = full + next.substr(0, keep) + std::string(zeros, '\0');
      absl::StatusOr<SegmentScan> scan = ScanSegment(s, /*is_last=*/true, "seg");
      ASSERT_TRUE(scan.ok()) << keep << " " << scan.status();
      EXPECT_EQ(scan->records.size(), 3u);
      EXPECT_EQ(scan->end, full.size());
      // A prefix that is all zeros after the length bytes reads as unwritten space.
      bool rest_zero = s.find_first_not_of('\0', full.size()) == std::string::npos;
      EXPECT_EQ(scan->torn, !rest_zero) << keep;
      absl::StatusOr<SegmentScan> not_last = ScanSegment(s, /*is_last=*/false, "seg");
      if (rest_zero) {
        EXPECT_TRUE(not_last.ok());
      } else {
        EXPECT_EQ(not_last.status().code(), absl::StatusCode::kDataLoss) << keep;
      }
    }
  }
}

TEST(RecordTest, DamageFollowedByAValidRecordIsCorruption) {
  std::vector<uint64_t> offsets;
  const std::string good = ThreeRecords(256, &offsets);
  // Flip every bit of the first two records, one at a time: each must be caught, in the last
  // segment too, because a valid record follows.
  for (uint64_t pos = 0; pos < offsets[2]; ++pos) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string s = good;
      s[pos] = static_cast<char>(s[pos] ^ (1 << bit));
      absl::StatusOr<SegmentScan> scan = ScanSegment(s, /*is_last=*/true, "0001-0002.wal");
      ASSERT_FALSE(scan.ok()) << "pos " << pos << " bit " << bit;
      EXPECT_EQ(scan.status().code(), absl::StatusCode::kDataLoss);
      EXPECT_NE(scan.status().message().find("0001-0002.wal"), absl::string_view::npos);
    }
  }
}

TEST(RecordTest, DamagedLastRecordWithNothingAfterItLooksTorn) {
  std::vector<uint64_t> offsets;
  std::string s = ThreeRecords(256, &offsets);
  s[offsets[2] + 4] = static_cast<char>(s[offsets[2] + 4] ^ 0x10);  // crc of the last record
  absl::StatusOr<SegmentScan> scan = ScanSegment(s, /*is_last=*/true, "seg");
  ASSERT_TRUE(scan.ok());
  EXPECT_TRUE(scan->torn);
  EXPECT_EQ(scan->end, offsets[2]);
  EXPECT_EQ(scan->torn_reason, "checksum mismatch");
  EXPECT_EQ(ScanSegment(s, /*is_last=*/false, "seg").status().code(), absl::StatusCode::kDataLoss);
}

TEST(RecordTest, GarbageNeverCrashes) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 200, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    absl::StatusOr<SegmentScan> scan = ScanSegment(s, rng() % 2 == 0, "seg");
    if (scan.ok()) {
      EXPECT_LE(scan->end, s.size());
    }
    (void)DecodeSegmentHeader(s);
    (void)DecodeHardState(s);
    (void)DecodeSnapshotRecord(s);
  }
}

TEST(RecordTest, PayloadCodecsRoundTrip) {
  raft::HardState hs{7, 3, 1234567890123ull};
  absl::StatusOr<raft::HardState> hs2 = DecodeHardState(EncodeHardState(hs));
  ASSERT_TRUE(hs2.ok());
  EXPECT_EQ(*hs2, hs);
  EXPECT_FALSE(DecodeHardState(EncodeHardState(hs) + "x").ok());

  raft::SnapshotMetadata meta{100, 5, raft::ConfState{{1, 2, 3}, {9}}};
  for (bool keep : {false, true}) {
    absl::StatusOr<SnapshotRecord> rec = DecodeSnapshotRecord(EncodeSnapshotRecord({meta, keep}));
    ASSERT_TRUE(rec.ok()) << rec.status();
    EXPECT_EQ(*rec, (SnapshotRecord{meta, keep}));
  }

  SegmentHeader header{3, 77, hs, meta};
  absl::StatusOr<SegmentHeader> header2 = DecodeSegmentHeader(EncodeSegmentHeader(header));
  ASSERT_TRUE(header2.ok()) << header2.status();
  EXPECT_EQ(*header2, header);
  std::string bad = EncodeSegmentHeader(header);
  bad[0] = 'X';
  EXPECT_FALSE(DecodeSegmentHeader(bad).ok());
}

}  // namespace
}  // namespace cairn::wal
