// Helpers shared by the WAL tests.
#pragma once

#include <string>
#include <vector>

#include "server/raft/message.h"

#include "absl/strings/str_cat.h"

namespace cairn::wal::testing {

inline raft::Entry MakeEntry(raft::LogIndex index, raft::Term term, std::string data = "") {
  // absl::StrCat, not `"v" + std::to_string(...)`: GCC 12 -O3 reports a false -Wrestrict there.
  if (data.empty()) data = absl::StrCat("v", index, "@", term);
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
