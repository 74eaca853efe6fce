// WAL record framing and payload codecs (docs/wal_format.md, "Records").
//
//   record := length:u32 crc:u32 type:u8 payload:byte[length] zero-padding-to-8
//
// ScanSegment applies the torn-tail / corruption rules of docs/wal_format.md to one segment's
// bytes. Everything here is pure: thread-safe, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/raft/message.h"

namespace cairn::wal {

enum class RecordType : uint8_t {
  kSegmentHeader = 1,
  kEntry = 2,
  kHardState = 3,
  kSnapshot = 4,
};
inline constexpr uint8_t kMaxRecordType = 4;

inline constexpr size_t kRecordHeaderBytes = 9;
inline constexpr size_t kRecordAlignment = 8;
inline constexpr uint32_t kMaxRecordBytes = 64u << 20;

// Bytes a record with `payload_bytes` of payload takes on disk, padding included.
inline uint64_t FramedRecordBytes(uint64_t payload_bytes) {
  uint64_t n = kRecordHeaderBytes + payload_bytes;
  return (n + kRecordAlignment - 1) / kRecordAlignment * kRecordAlignment;
}

// Appends one framed, padded record to *out. Requires payload.size() <= kMaxRecordBytes.
void AppendRecord(RecordType type, std::string_view payload, std::string* out);

struct Record {
  RecordType type;
  std::string_view payload;  // points into the scanned segment bytes
  uint64_t offset;           // of the record's first header byte in the segment
};

struct SegmentScan {
  std::vector<Record> records;  // the valid records, in order
  uint64_t end = 0;             // offset just past the last valid record (where appends go)
  bool torn = false;            // true: bytes after `end` are a torn tail to cut
  std::string torn_reason;      // what was wrong at `end` when torn
};

// Splits one segment's bytes into records. `is_last` says whether this is the WAL's last segment
// (only the last one may have a torn tail). `name` is used in error messages. Returns DataLoss
// when the bytes are corrupt by the rules of docs/wal_format.md ("Torn tails and corruption").
absl::StatusOr<SegmentScan> ScanSegment(std::string_view contents, bool is_last,
                                        std::string_view name);

// Payloads.

struct SegmentHeader {
  uint64_t seq = 0;
  raft::LogIndex first_index = 0;
  raft::HardState hard_state;
  raft::SnapshotMetadata snapshot;

  bool operator==(const SegmentHeader&) const = default;
};

struct SnapshotRecord {
  raft::SnapshotMetadata metadata;
  // Entries after metadata.index survive the marker (see docs/wal_format.md).
  bool keep_suffix = false;

  bool operator==(const SnapshotRecord&) const = default;
};

// Decoders return InvalidArgument on malformed input; they never crash.
std::string EncodeSegmentHeader(const SegmentHeader& header);
absl::StatusOr<SegmentHeader> DecodeSegmentHeader(std::string_view in);
std::string EncodeHardState(const raft::HardState& hs);
absl::StatusOr<raft::HardState> DecodeHardState(std::string_view in);
std::string EncodeSnapshotRecord(const SnapshotRecord& record);
absl::StatusOr<SnapshotRecord> DecodeSnapshotRecord(std::string_view in);

}  // namespace cairn::wal
