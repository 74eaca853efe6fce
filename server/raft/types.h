// Basic value types of the Raft core (Raft paper, Figure 2).
//
// Terms, log indexes and member ids are all uint64 on the wire (etcd's raftpb uses the same
// widths); the aliases below keep signatures self-describing. Index 0 and term 0 mean "none":
// the first real log entry has index 1, the first real term is 1, and member id 0 is never a
// valid member.
#pragma once

#include <cstdint>
#include <limits>

namespace cairn::raft {

using Term = uint64_t;
using LogIndex = uint64_t;
using MemberId = uint64_t;

// No member: "no leader", "voted for nobody".
inline constexpr MemberId kNoMember = 0;

// Passed as a byte limit to mean "no limit".
inline constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

}  // namespace cairn::raft
