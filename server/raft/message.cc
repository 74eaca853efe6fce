#include "server/raft/message.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cairn::raft {
namespace {

// Format version of EncodeMessage; bumped on any incompatible change.
constexpr uint8_t kMessageFormatVersion = 1;
// Upper bound on the number of entries in one decoded message; guards against a corrupt count
// making the decoder reserve huge vectors.
constexpr uint64_t kMaxDecodedEntries = uint64_t{1} << 24;

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutBytes(std::string_view bytes, std::string* out) {
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

void PutIdList(const std::vector<MemberId>& ids, std::string* out) {
  PutVarint(ids.size(), out);
  for (MemberId id : ids) PutVarint(id, out);
}

// Reads the encodings above; every Read* returns false on truncation or overflow.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool ReadVarint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
      if (in_.empty()) return false;
      uint8_t byte = static_cast<uint8_t>(in_.front());
      in_.remove_prefix(1);
      if (shift == 63 && byte > 1) return false;
      result |= uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }

  bool ReadByte(uint8_t* b) {
    if (in_.empty()) return false;
    *b = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return true;
  }

  bool ReadBytes(std::string* out) {
    uint64_t n;
    if (!ReadVarint(&n) || n > in_.size()) return false;
    out->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }

  bool ReadIdList(std::vector<MemberId>* ids) {
    uint64_t n;
    if (!ReadVarint(&n) || n > in_.size()) return false;  // each id takes at least one byte
    ids->resize(n);
    for (auto& id : *ids) {
      if (!ReadVarint(&id)) return false;
    }
    return true;
  }

  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
};

absl::Status Malformed(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("raft: malformed ", std::string(what)));
}

bool ReadEntry(Reader* r, Entry* e) {
  uint8_t type;
  if (!r->ReadByte(&type) || type > static_cast<uint8_t>(EntryType::kConfChange)) return false;
  e->type = static_cast<EntryType>(type);
  return r->ReadVarint(&e->term) && r->ReadVarint(&e->index) && r->ReadBytes(&e->data);
}

bool ReadSnapshot(Reader* r, Snapshot* s) {
  return r->ReadVarint(&s->metadata.index) && r->ReadVarint(&s->metadata.term) &&
         r->ReadIdList(&s->metadata.conf_state.voters) &&
         r->ReadIdList(&s->metadata.conf_state.learners) && r->ReadBytes(&s->data);
}

bool Contains(const std::vector<MemberId>& ids, MemberId id) {
  return std::binary_search(ids.begin(), ids.end(), id);
}

void Insert(std::vector<MemberId>* ids, MemberId id) {
  ids->insert(std::lower_bound(ids->begin(), ids->end(), id), id);
}

void Erase(std::vector<MemberId>* ids, MemberId id) {
  auto it = std::lower_bound(ids->begin(), ids->end(), id);
  if (it != ids->end() && *it == id) ids->erase(it);
}

}  // namespace

bool ConfState::IsVoter(MemberId id) const { return Contains(voters, id); }
bool ConfState::IsLearner(MemberId id) const { return Contains(learners, id); }

absl::Status ValidateConfChange(const ConfState& cs, const ConfChange& cc) {
  if (cc.node_id == kNoMember) return absl::InvalidArgumentError("raft: conf change for member 0");
  switch (cc.type) {
    case ConfChangeType::kAddNode:
      if (cs.IsVoter(cc.node_id)) {
        return absl::InvalidArgumentError(
            absl::StrCat("raft: ", cc.node_id, " is already a voter"));
      }
      return absl::OkStatus();
    case ConfChangeType::kAddLearnerNode:
      if (cs.IsVoter(cc.node_id)) {
        return absl::InvalidArgumentError(
            absl::StrCat("raft: cannot demote voter ", cc.node_id, " to learner"));
      }
      if (cs.IsLearner(cc.node_id)) {
        return absl::InvalidArgumentError(
            absl::StrCat("raft: ", cc.node_id, " is already a learner"));
      }
      return absl::OkStatus();
    case ConfChangeType::kRemoveNode:
      if (!cs.IsVoter(cc.node_id) && !cs.IsLearner(cc.node_id)) {
        return absl::InvalidArgumentError(absl::StrCat("raft: ", cc.node_id, " is not a member"));
      }
      if (cs.IsVoter(cc.node_id) && cs.voters.size() == 1) {
        return absl::InvalidArgumentError("raft: cannot remove the last voter");
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("raft: unknown conf change type");
}

ConfState ApplyConfChangeToState(const ConfState& cs, const ConfChange& cc) {
  if (!ValidateConfChange(cs, cc).ok()) return cs;
  ConfState out = cs;
  switch (cc.type) {
    case ConfChangeType::kAddNode:
      Erase(&out.learners, cc.node_id);  // promotion, if it was a learner
      Insert(&out.voters, cc.node_id);
      break;
    case ConfChangeType::kAddLearnerNode:
      Insert(&out.learners, cc.node_id);
      break;
    case ConfChangeType::kRemoveNode:
      Erase(&out.voters, cc.node_id);
      Erase(&out.learners, cc.node_id);
      break;
  }
  return out;
}

std::string_view MessageTypeName(MessageType type) {
  static constexpr std::string_view kNames[kMessageTypeCount] = {
      "Hup",         "Beat",           "Prop",       "App",           "AppResp",       "Vote",
      "VoteResp",    "Snap",           "Heartbeat",  "HeartbeatResp", "Unreachable",   "SnapStatus",
      "CheckQuorum", "TransferLeader", "TimeoutNow", "ReadIndex",     "ReadIndexResp", "PreVote",
      "PreVoteResp"};
  auto i = static_cast<size_t>(type);
  return i < kMessageTypeCount ? kNames[i] : "Unknown";
}

bool IsLocalMessage(MessageType type) {
  return type == MessageType::kHup || type == MessageType::kBeat ||
         type == MessageType::kUnreachable || type == MessageType::kSnapStatus ||
         type == MessageType::kCheckQuorum;
}

bool IsResponseMessage(MessageType type) {
  return type == MessageType::kAppResp || type == MessageType::kVoteResp ||
         type == MessageType::kHeartbeatResp || type == MessageType::kUnreachable ||
         type == MessageType::kPreVoteResp || type == MessageType::kReadIndexResp;
}

void EncodeEntry(const Entry& entry, std::string* out) {
  out->push_back(static_cast<char>(entry.type));
  PutVarint(entry.term, out);
  PutVarint(entry.index, out);
  PutBytes(entry.data, out);
}

absl::StatusOr<Entry> DecodeEntry(std::string_view in) {
  Reader r(in);
  Entry e;
  if (!ReadEntry(&r, &e) || !r.empty()) return Malformed("entry");
  return e;
}

void EncodeSnapshot(const Snapshot& s, std::string* out) {
  PutVarint(s.metadata.index, out);
  PutVarint(s.metadata.term, out);
  PutIdList(s.metadata.conf_state.voters, out);
  PutIdList(s.metadata.conf_state.learners, out);
  PutBytes(s.data, out);
}

absl::StatusOr<Snapshot> DecodeSnapshot(std::string_view in) {
  Reader r(in);
  Snapshot s;
  if (!ReadSnapshot(&r, &s) || !r.empty()) return Malformed("snapshot");
  return s;
}

std::string EncodeMessage(const Message& m) {
  std::string out;
  out.push_back(static_cast<char>(kMessageFormatVersion));
  out.push_back(static_cast<char>(m.type));
  PutVarint(m.to, &out);
  PutVarint(m.from, &out);
  PutVarint(m.term, &out);
  PutVarint(m.log_term, &out);
  PutVarint(m.index, &out);
  PutVarint(m.commit, &out);
  out.push_back(static_cast<char>((m.reject ? 1 : 0) | (m.snapshot.has_value() ? 2 : 0)));
  PutVarint(m.reject_hint, &out);
  PutBytes(m.context, &out);
  PutVarint(m.entries.size(), &out);
  for (const Entry& e : m.entries) EncodeEntry(e, &out);
  if (m.snapshot.has_value()) EncodeSnapshot(*m.snapshot, &out);
  return out;
}

absl::StatusOr<Message> DecodeMessage(std::string_view in) {
  Reader r(in);
  Message m;
  uint8_t version, type, flags;
  if (!r.ReadByte(&version) || version != kMessageFormatVersion)
    return Malformed("message version");
  if (!r.ReadByte(&type) || type >= kMessageTypeCount) return Malformed("message type");
  m.type = static_cast<MessageType>(type);
  uint64_t count;
  if (!r.ReadVarint(&m.to) || !r.ReadVarint(&m.from) || !r.ReadVarint(&m.term) ||
      !r.ReadVarint(&m.log_term) || !r.ReadVarint(&m.index) || !r.ReadVarint(&m.commit) ||
      !r.ReadByte(&flags) || flags > 3 || !r.ReadVarint(&m.reject_hint) ||
      !r.ReadBytes(&m.context) || !r.ReadVarint(&count) || count > kMaxDecodedEntries) {
    return Malformed("message header");
  }
  m.reject = (flags & 1) != 0;
  for (uint64_t i = 0; i < count; ++i) {
    Entry e;
    if (!ReadEntry(&r, &e)) return Malformed("message entry");
    m.entries.push_back(std::move(e));
  }
  if (flags & 2) {
    Snapshot s;
    if (!ReadSnapshot(&r, &s)) return Malformed("message snapshot");
    m.snapshot = std::move(s);
  }
  if (!r.empty()) return Malformed("message: trailing bytes");
  return m;
}

std::string EncodeConfChange(const ConfChange& cc) {
  std::string out;
  out.push_back(static_cast<char>(cc.type));
  PutVarint(cc.node_id, &out);
  PutBytes(cc.context, &out);
  return out;
}

absl::StatusOr<ConfChange> DecodeConfChange(std::string_view in) {
  Reader r(in);
  ConfChange cc;
  uint8_t type;
  if (!r.ReadByte(&type) || type > static_cast<uint8_t>(ConfChangeType::kAddLearnerNode) ||
      !r.ReadVarint(&cc.node_id) || !r.ReadBytes(&cc.context) || !r.empty()) {
    return Malformed("conf change");
  }
  cc.type = static_cast<ConfChangeType>(type);
  return cc;
}

}  // namespace cairn::raft
