// The WAL record reader over corrupted segment bytes: ScanSegment (torn tails, checksums, bad
// lengths) and the payload decoders for each record it accepts.
#include "server/wal/record.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool is_last = (data[0] & 1) != 0;
  std::string_view contents(reinterpret_cast<const char*>(data + 1), size - 1);
  auto scan = cairn::wal::ScanSegment(contents, is_last, "fuzz.wal");
  if (!scan.ok()) return 0;
  for (const cairn::wal::Record& record : scan->records) {
    switch (record.type) {
      case cairn::wal::RecordType::kSegmentHeader:
        (void)cairn::wal::DecodeSegmentHeader(record.payload);
        break;
      case cairn::wal::RecordType::kEntry:
        (void)cairn::raft::DecodeEntry(record.payload);
        break;
      case cairn::wal::RecordType::kHardState:
        (void)cairn::wal::DecodeHardState(record.payload);
        break;
      case cairn::wal::RecordType::kSnapshot:
        (void)cairn::wal::DecodeSnapshotRecord(record.payload);
        break;
    }
  }
  return 0;
}

std::vector<std::string> FuzzSeeds() {
  cairn::wal::SegmentHeader header;
  header.seq = 1;
  header.first_index = 1;
  std::string segment;
  cairn::wal::AppendRecord(cairn::wal::RecordType::kSegmentHeader,
                           cairn::wal::EncodeSegmentHeader(header), &segment);
  cairn::raft::Entry e;
  e.term = 1;
  e.index = 1;
  e.data = "put k v";
  std::string entry;
  cairn::raft::EncodeEntry(e, &entry);
  cairn::wal::AppendRecord(cairn::wal::RecordType::kEntry, entry, &segment);
  cairn::raft::HardState hs;
  hs.term = 1;
  hs.commit = 1;
  cairn::wal::AppendRecord(cairn::wal::RecordType::kHardState, cairn::wal::EncodeHardState(hs),
                           &segment);
  return {std::string(1, '\1') + segment, std::string(1, '\0') + segment};
}
