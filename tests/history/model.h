// The etcd KV model the history checker replays (docs/history_checker.md, "Model replay").
// Pure functions over value types; thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/history/history.h"

namespace cairn::history {

// The store's keys at one revision.
using State = std::map<std::string, KeyValue>;

// The result of evaluating a request on a state.
struct Applied {
  bool succeeded = true;
  std::vector<OpResponse> responses;
  std::vector<Event> events;  // In etcd's order: txn op order, deleted keys in key order.
  bool mutated = false;       // True when the request consumed a revision.
  State state;                // The state afterwards (== input when !mutated).
};

// Returns the state at `revision` for a Range at an explicit revision; nullptr when unknown.
using StateAt = std::function<const State*(int64_t revision)>;

// Evaluates `request` on `state`, as etcd does when the store is at revision `revision - 1` and
// the request, if it writes, gets revision `revision`.
Applied ApplyRequest(const State& state, const Request& request, int64_t revision,
                     const StateAt& state_at);

// True when the two op responses agree (kvs, count, deleted).
bool SameResponse(const OpResponse& a, const OpResponse& b);

}  // namespace cairn::history
