// Helpers shared by the WAL tests.
#pragma once

#include <string>
#include <vector>

#include "server/raft/message.h"

namespace cairn::wal::testing {

inline raft::Entry MakeEntry(raft::LogIndex index, raft::Term term, std::string data = "") {
  if (data.empty()) data = "v" + std::to_string(index) + "@" + std::to_string(term);
  return raft::Entry{term, index, raft::EntryType::kNormal, std::move(data)};
}

// Entries [lo, hi] at `term`.
inline std::vector<raft::Entry> MakeEntries(raft::LogIndex lo, raft::LogIndex hi, raft::Term term,
                                            size_t data_bytes = 0) {
  std::vector<raft::Entry> out;
  for (raft::LogIndex i = lo; i <= hi; ++i) {
    out.push_back(MakeEntry(i, term, data_bytes == 0 ? "" : std::string(data_bytes, 'a' + i % 26)));
  }
  return out;
}

}  // namespace cairn::wal::testing
