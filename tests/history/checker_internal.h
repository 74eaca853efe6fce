// Shared between checker.cc (KV order) and watch_checker.cc (watch guarantees).
#pragma once

#include <cstdint>
#include <vector>

#include "tests/history/checker.h"
#include "tests/history/model.h"

namespace cairn::history::internal {

// The reconstructed KV history: states[r] is the store at revision r (states[0] unused,
// states[1] empty), events[r] the events of revision r.
struct KvHistory {
  std::vector<State> states;
  std::vector<std::vector<Event>> events;
};

// Filters `events` to those whose key is in the watcher's range.
std::vector<Event> Filter(const std::vector<Event>& events, const Watcher& watcher);

// The last event revision a stream received (0 when none).
int64_t LastEventRevision(const WatchStream& stream);

void CheckWatchers(const History& history, const KvHistory& kv, Report& report);

}  // namespace cairn::history::internal
