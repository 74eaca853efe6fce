// Plain data types exchanged between the Raft core, its storage and its peers: log entries,
// hard state, configurations, snapshots and messages (Raft paper §5, Figure 2; thesis §4).
//
// These are plain structs with value semantics (no protobuf); EncodeEntry/EncodeMessage give a
// compact, versioned binary form so that the peer transport and the WAL can ship them.
// Thread safety: plain values; no internal synchronisation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/raft/types.h"

namespace cairn::raft {

enum class EntryType : uint8_t {
  kNormal = 0,      // data is an application command (empty data: a leader's no-op, §8)
  kConfChange = 1,  // data is an encoded ConfChange (thesis §4.1)
};

// One log entry (§5.3). Index and term identify it; by the Log Matching Property two entries with
// the same index and term are identical and so are the logs before them.
struct Entry {
  Term term = 0;
  LogIndex index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  // Bytes counted against the flow-control limits (payload only, as etcd does).
  uint64_t PayloadSize() const { return data.size(); }
  bool operator==(const Entry&) const = default;
};

// State that must be durable before any message that depends on it leaves the member (Figure 2,
// "persistent state on all servers"; commit is persisted too so a restart can re-apply quickly).
struct HardState {
  Term term = 0;
  MemberId vote = kNoMember;
  LogIndex commit = 0;

  bool IsEmpty() const { return term == 0 && vote == kNoMember && commit == 0; }
  bool operator==(const HardState&) const = default;
};

// A cluster configuration: the voting members and the non-voting learners. Both lists are kept
// sorted and disjoint.
struct ConfState {
  std::vector<MemberId> voters;
  std::vector<MemberId> learners;

  bool IsVoter(MemberId id) const;
  bool IsLearner(MemberId id) const;
  bool operator==(const ConfState&) const = default;
};

enum class ConfChangeType : uint8_t {
  kAddNode = 0,         // add a voter, or promote an existing learner to voter
  kRemoveNode = 1,      // remove a voter or a learner
  kAddLearnerNode = 2,  // add a learner (a voter cannot be demoted: the change is ignored)
};

// A single-member configuration change (thesis §4.2). Carried in an Entry of type kConfChange.
struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddNode;
  MemberId node_id = kNoMember;
  std::string context;  // opaque to Raft (etcd puts the member's URLs here)

  bool operator==(const ConfChange&) const = default;
};

// Applies `cc` to `cs` and returns the new configuration. Pure and deterministic: every member
// computes the same result. A change that is not valid against `cs` (removing a non-member,
// demoting a voter, removing the last voter, id 0) returns `cs` unchanged.
ConfState ApplyConfChangeToState(const ConfState& cs, const ConfChange& cc);

// Returns OK when `cc` would change `cs`, or InvalidArgument saying why not.
absl::Status ValidateConfChange(const ConfState& cs, const ConfChange& cc);

struct SnapshotMetadata {
  LogIndex index = 0;    // last index covered by the snapshot
  Term term = 0;         // term of that entry
  ConfState conf_state;  // configuration as of `index`

  bool operator==(const SnapshotMetadata&) const = default;
};

// A state-machine snapshot (§7). Index 0 means "no snapshot".
struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;

  bool IsEmpty() const { return metadata.index == 0; }
  bool operator==(const Snapshot&) const = default;
};

enum class MessageType : uint8_t {
  kHup = 0,              // local: start an election
  kBeat = 1,             // local: leader sends heartbeats
  kProp = 2,             // propose entries (local, or forwarded by a follower)
  kApp = 3,              // AppendEntries RPC (§5.3)
  kAppResp = 4,          // AppendEntries response
  kVote = 5,             // RequestVote RPC (§5.2)
  kVoteResp = 6,         // RequestVote response
  kSnap = 7,             // InstallSnapshot RPC (§7)
  kHeartbeat = 8,        // empty AppendEntries carrying only commit and read context
  kHeartbeatResp = 9,    // heartbeat response
  kUnreachable = 10,     // local: transport reports a peer unreachable
  kSnapStatus = 11,      // local: transport reports a snapshot send result
  kCheckQuorum = 12,     // local: leader checks it heard from a quorum (thesis §6.2)
  kTransferLeader = 13,  // request leadership transfer (thesis §3.10); `from` is the transferee
  kTimeoutNow = 14,      // leader tells the transferee to campaign at once
  kReadIndex = 15,       // read index request (thesis §6.4); context is the request id
  kReadIndexResp = 16,   // read index response to a follower
  kPreVote = 17,         // PreVote RPC (thesis §9.6)
  kPreVoteResp = 18,     // PreVote response
};
inline constexpr int kMessageTypeCount = 19;

std::string_view MessageTypeName(MessageType type);

// Messages that never leave the member (created by the core or the caller for itself).
bool IsLocalMessage(MessageType type);
// Responses to a request from a peer.
bool IsResponseMessage(MessageType type);

// One Raft message. Fields not used by a type are zero/empty.
struct Message {
  MessageType type = MessageType::kHup;
  MemberId to = kNoMember;
  MemberId from = kNoMember;
  Term term = 0;      // sender's term; 0 for local messages and forwarded proposals/reads
  Term log_term = 0;  // kApp: term of entry `index`; kVote: candidate's last term; reject hint term
  LogIndex index = 0;  // kApp: index preceding `entries`; kAppResp: last matched/rejected index
  std::vector<Entry> entries;
  LogIndex commit = 0;
  std::optional<Snapshot> snapshot;  // kSnap only
  bool reject = false;
  LogIndex reject_hint = 0;  // kAppResp reject: follower's hint index (fast backtracking)
  std::string context;       // read index request id; campaign type for transfer elections

  bool operator==(const Message&) const = default;
};

// Compact binary codecs (varints, length-prefixed bytes). Decoding validates lengths and enum
// values and returns InvalidArgument on malformed or truncated input; it never crashes.
void EncodeEntry(const Entry& entry, std::string* out);
absl::StatusOr<Entry> DecodeEntry(std::string_view in);
std::string EncodeMessage(const Message& message);
absl::StatusOr<Message> DecodeMessage(std::string_view in);
std::string EncodeConfChange(const ConfChange& cc);
absl::StatusOr<ConfChange> DecodeConfChange(std::string_view in);
void EncodeSnapshot(const Snapshot& snapshot, std::string* out);
absl::StatusOr<Snapshot> DecodeSnapshot(std::string_view in);

}  // namespace cairn::raft
