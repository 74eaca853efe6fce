#include "server/wal/record.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/base/check.h"
#include "server/base/crc32c.h"

namespace cairn::wal {

namespace crc32c = base::crc32c;

namespace {

constexpr std::string_view kMagic = "CAIRNWAL";
constexpr uint64_t kFormatVersion = 1;

void PutFixed32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetFixed32(const char* in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in);
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Consumes a varint from the front of *in; false if truncated or longer than 10 bytes.
bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    if (shift == 63 && byte > 1) return false;
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

// CRC over the length field, the type and the payload (docs/wal_format.md).
uint32_t RecordCrc(const char* length_field, uint8_t type, std::string_view payload) {
  uint32_t crc = crc32c::Extend(0, length_field, 4);
  char t = static_cast<char>(type);
  crc = crc32c::Extend(crc, &t, 1);
  return crc32c::Mask(crc32c::Extend(crc, payload.data(), payload.size()));
}

bool AllZero(std::string_view bytes) {
  // Compare word-sized chunks: a 64 MiB preallocated tail is scanned on every open.
  const char* p = bytes.data();
  size_t n = bytes.size();
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    if (word != 0) return false;
    p += 8;
    n -= 8;
  }
  while (n-- > 0) {
    if (*p++ != 0) return false;
  }
  return true;
}

// Offset just past the last non-zero byte of `bytes` (0 if all zero).
size_t EndOfNonZero(std::string_view bytes) {
  size_t n = bytes.size();
  while (n % 8 != 0 && bytes[n - 1] == 0) --n;
  if (n % 8 == 0) {
    // Word steps over the (usually long) zero tail, then bytes within the last non-zero word.
    while (n >= 8) {
      uint64_t word;
      std::memcpy(&word, bytes.data() + n - 8, 8);
      if (word != 0) break;
      n -= 8;
    }
    while (n > 0 && bytes[n - 1] == 0) --n;
  }
  return n;
}

// Tries to parse one record at `offset`. On success fills *record and *next (the offset after its
// padding) and returns true; otherwise sets *why and returns false.
bool ParseRecordAt(std::string_view contents, uint64_t offset, Record* record, uint64_t* next,
                   std::string* why) {
  if (contents.size() - offset < kRecordHeaderBytes) {
    *why = "record header runs past the end of the file";
    return false;
  }
  const char* h = contents.data() + offset;
  uint32_t length = GetFixed32(h);
  uint32_t stored_crc = GetFixed32(h + 4);
  auto type = static_cast<uint8_t>(h[8]);
  if (type == 0) {
    *why = "record type 0 (unwritten space)";
    return false;
  }
  if (type > kMaxRecordType) {
    *why = absl::StrCat("unknown record type ", type);
    return false;
  }
  if (length > kMaxRecordBytes) {
    *why = absl::StrCat("record length ", length, " exceeds the limit ", kMaxRecordBytes);
    return false;
  }
  uint64_t framed = FramedRecordBytes(length);
  if (framed > contents.size() - offset) {
    *why = absl::StrCat("record of ", length, " bytes runs past the end of the file");
    return false;
  }
  std::string_view payload = contents.substr(offset + kRecordHeaderBytes, length);
  if (RecordCrc(h, type, payload) != stored_crc) {
    *why = "checksum mismatch";
    return false;
  }
  if (!AllZero(contents.substr(offset + kRecordHeaderBytes + length,
                               framed - kRecordHeaderBytes - length))) {
    *why = "non-zero record padding";
    return false;
  }
  *record = Record{static_cast<RecordType>(type), payload, offset};
  *next = offset + framed;
  return true;
}

absl::Status Corrupt(std::string_view name, uint64_t offset, const std::string& why) {
  return absl::DataLossError(
      absl::StrCat("wal: corrupt segment ", std::string(name), " at offset ", offset, ": ", why));
}

absl::Status Malformed(const char* what) {
  return absl::InvalidArgumentError(absl::StrCat("wal: malformed ", what, " record"));
}

void PutHardState(const raft::HardState& hs, std::string* out) {
  PutVarint(hs.term, out);
  PutVarint(hs.vote, out);
  PutVarint(hs.commit, out);
}

bool GetHardState(std::string_view* in, raft::HardState* hs) {
  return GetVarint(in, &hs->term) && GetVarint(in, &hs->vote) && GetVarint(in, &hs->commit);
}

void PutSnapshot(const raft::SnapshotMetadata& metadata, bool keep_suffix, std::string* out) {
  out->push_back(static_cast<char>(keep_suffix ? 1 : 0));
  raft::EncodeSnapshot(raft::Snapshot{metadata, ""}, out);
}

bool GetSnapshot(std::string_view in, raft::SnapshotMetadata* metadata, bool* keep_suffix) {
  if (in.empty()) return false;
  auto flags = static_cast<uint8_t>(in.front());
  if (flags > 1) return false;
  in.remove_prefix(1);
  absl::StatusOr<raft::Snapshot> snapshot = raft::DecodeSnapshot(in);
  if (!snapshot.ok() || !snapshot->data.empty()) return false;
  *metadata = std::move(snapshot->metadata);
  *keep_suffix = flags == 1;
  return true;
}

}  // namespace

void AppendRecord(RecordType type, std::string_view payload, std::string* out) {
  CAIRN_CHECK(payload.size() <= kMaxRecordBytes)
      << "wal record of " << payload.size() << " bytes exceeds " << kMaxRecordBytes;
  char header[kRecordHeaderBytes];
  PutFixed32(static_cast<uint32_t>(payload.size()), header);
  header[8] = static_cast<char>(type);
  PutFixed32(RecordCrc(header, static_cast<uint8_t>(type), payload), header + 4);
  out->append(header, kRecordHeaderBytes);
  out->append(payload);
  out->append(FramedRecordBytes(payload.size()) - kRecordHeaderBytes - payload.size(), '\0');
}

absl::StatusOr<SegmentScan> ScanSegment(std::string_view contents, bool is_last,
                                        std::string_view name) {
  SegmentScan scan;
  uint64_t offset = 0;
  std::string why;
  while (offset < contents.size()) {
    Record record;
    uint64_t next;
    if (!ParseRecordAt(contents, offset, &record, &next, &why)) break;
    scan.records.push_back(record);
    offset = next;
  }
  scan.end = offset;
  if (offset == contents.size()) return scan;  // ends exactly at end of file
  std::string_view rest = contents.substr(offset);
  size_t nonzero_end = EndOfNonZero(rest);
  if (nonzero_end == 0) return scan;  // rule 1: the rest is unwritten space
  if (!is_last) {
    // Rule 2: a segment with a successor was completely fsynced before the successor existed.
    return Corrupt(name, offset, absl::StrCat(why, " (not the last segment)"));
  }
  // Rule 3: a valid record after the damage means the damage is in the middle of written data.
  // Valid records start with a non-zero type byte, so only offsets before the last non-zero byte
  // can hold one.
  for (uint64_t p = offset + kRecordAlignment; p - offset < nonzero_end; p += kRecordAlignment) {
    Record record;
    uint64_t next;
    std::string ignored;
    if (ParseRecordAt(contents, p, &record, &next, &ignored)) {
      return Corrupt(name, offset,
                     absl::StrCat(why, "; a valid record follows at offset ", p,
                                  ", so this is not a torn write"));
    }
  }
  scan.torn = true;
  scan.torn_reason = why;
  return scan;
}

std::string EncodeSegmentHeader(const SegmentHeader& header) {
  std::string out(kMagic);
  PutVarint(kFormatVersion, &out);
  PutVarint(header.seq, &out);
  PutVarint(header.first_index, &out);
  PutHardState(header.hard_state, &out);
  PutSnapshot(header.snapshot, /*keep_suffix=*/false, &out);
  return out;
}

absl::StatusOr<SegmentHeader> DecodeSegmentHeader(std::string_view in) {
  if (in.substr(0, kMagic.size()) != kMagic) return Malformed("segment header (magic)");
  in.remove_prefix(kMagic.size());
  uint64_t version;
  if (!GetVarint(&in, &version)) return Malformed("segment header");
  if (version != kFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("wal: unsupported format version ", version,
                                                   " (this build reads ", kFormatVersion, ")"));
  }
  SegmentHeader header;
  bool keep_suffix = false;
  if (!GetVarint(&in, &header.seq) || !GetVarint(&in, &header.first_index) ||
      !GetHardState(&in, &header.hard_state) || !GetSnapshot(in, &header.snapshot, &keep_suffix) ||
      keep_suffix) {
    return Malformed("segment header");
  }
  return header;
}

std::string EncodeHardState(const raft::HardState& hs) {
  std::string out;
  PutHardState(hs, &out);
  return out;
}

absl::StatusOr<raft::HardState> DecodeHardState(std::string_view in) {
  raft::HardState hs;
  if (!GetHardState(&in, &hs) || !in.empty()) return Malformed("hard state");
  return hs;
}

std::string EncodeSnapshotRecord(const SnapshotRecord& record) {
  std::string out;
  PutSnapshot(record.metadata, record.keep_suffix, &out);
  return out;
}

absl::StatusOr<SnapshotRecord> DecodeSnapshotRecord(std::string_view in) {
  SnapshotRecord record;
  if (!GetSnapshot(in, &record.metadata, &record.keep_suffix)) return Malformed("snapshot");
  return record;
}

}  // namespace cairn::wal
