// Plain data types shared by the Cairn client APIs (etcd's mvccpb and ResponseHeader).
// Value types: copy freely. Field names follow etcd's vocabulary.
#pragma once

#include <cstdint>
#include <string>

namespace cairn {

using Revision = int64_t;
using LeaseId = int64_t;
using MemberId = uint64_t;

struct ResponseHeader {
  uint64_t cluster_id = 0;
  MemberId member_id = 0;
  Revision revision = 0;
  uint64_t raft_term = 0;
};

struct KeyValue {
  std::string key;  // without the client's key_prefix
  std::string value;
  Revision create_revision = 0;
  Revision mod_revision = 0;
  int64_t version = 0;
  LeaseId lease = 0;
};

enum class EventType { kPut, kDelete };

struct Event {
  EventType type = EventType::kPut;
  KeyValue kv;  // for kDelete: key and mod_revision (the delete's revision)
  bool has_prev_kv = false;
  KeyValue prev_kv;  // set when the watch asked for prev_kv and the key existed
};

// The smallest key greater than every key that starts with `prefix` ("\0" for the empty prefix,
// meaning "all keys"). Use as range_end for prefix ranges.
std::string PrefixEnd(const std::string& prefix);

}  // namespace cairn
