// The watch guarantees (docs/history_checker.md, "Watch guarantees").
#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "tests/history/checker_internal.h"

namespace cairn::history::internal {
namespace {

// Events a stream received at one revision, and how many responses carried them.
struct Received {
  std::vector<Event> events;
  std::set<size_t> responses;
};

void CheckRevision(size_t w, size_t s, int64_t rev, const Received& got,
                   const std::vector<Event>& want, Report& report) {
  const std::string where = absl::StrCat("watcher ", w, " stream ", s, " revision ", rev);
  if (got.responses.size() > 1) {
    report.anomalies.push_back(absl::StrCat("atomic: ", where, " arrived split over ",
                                            got.responses.size(), " responses"));
  }
  if (got.events == want) return;
  if (got.events.size() == want.size() &&
      std::is_permutation(got.events.begin(), got.events.end(), want.begin())) {
    report.anomalies.push_back(absl::StrCat("ordered: ", where, " events out of txn order"));
    return;
  }
  report.anomalies.push_back(
      absl::StrCat("event-mismatch: ", where, " got ", got.events.size(),
                   " events, the KV history has ", want.size(), " (first differing key ",
                   absl::CHexEscape(got.events.empty() ? "" : got.events.front().kv.key), ")"));
}

void CheckStream(const History& history, const KvHistory& kv, size_t w, size_t s, Report& report,
                 std::set<std::pair<int64_t, std::string>>& seen, int64_t& last_rev) {
  const Watcher& watcher = history.watchers[w];
  const WatchStream& stream = watcher.streams[s];
  const int64_t max_rev = static_cast<int64_t>(kv.states.size()) - 1;
  std::map<int64_t, Received> received;
  int64_t bookmark = 0;
  for (size_t r = 0; r < stream.responses.size(); ++r) {
    const WatchResponse& response = stream.responses[r];
    if (response.events.empty() && !response.created && !response.canceled) {
      bookmark = std::max(bookmark, response.revision);
    }
    if (response.canceled && response.compact_revision != 0) {
      report.notes.push_back(absl::StrCat("watcher ", w, " stream ", s, " canceled: compacted at ",
                                          response.compact_revision));
    }
    for (const Event& event : response.events) {
      const int64_t rev = event.kv.mod_revision;
      ++report.events_checked;
      if (rev <= bookmark) {
        report.anomalies.push_back(absl::StrCat("bookmark: watcher ", w, " stream ", s,
                                                " event at revision ", rev,
                                                " after a progress notification at ", bookmark));
      }
      if (rev < last_rev) {
        report.anomalies.push_back(absl::StrCat("ordered: watcher ", w, " stream ", s,
                                                " event at revision ", rev, " after one at ",
                                                last_rev));
      }
      last_rev = std::max(last_rev, rev);
      if (!seen.insert({rev, event.kv.key}).second) {
        report.anomalies.push_back(absl::StrCat("unique: watcher ", w, " stream ", s, " key ",
                                                absl::CHexEscape(event.kv.key), " at revision ",
                                                rev, " delivered twice"));
      }
      if (rev < stream.start_revision || rev > max_rev || rev < 1) {
        report.anomalies.push_back(absl::StrCat("event-mismatch: watcher ", w, " stream ", s,
                                                " event at revision ", rev, " outside [start ",
                                                stream.start_revision, ", ", max_rev, "]"));
        continue;
      }
      Received& got = received[rev];
      got.events.push_back(event);
      got.responses.insert(r);
    }
  }
  const int64_t last = LastEventRevision(stream);
  for (const auto& [rev, got] : received) {
    if (rev >= 1 && rev <= max_rev)
      CheckRevision(w, s, rev, got, Filter(kv.events[rev], watcher), report);
  }
  // Reliable: every expected event in [start, last received] arrived.
  for (int64_t rev = std::max<int64_t>(stream.start_revision, 1); rev <= last && rev <= max_rev;
       ++rev) {
    if (received.contains(rev)) continue;
    if (!Filter(kv.events[rev], watcher).empty()) {
      report.anomalies.push_back(absl::StrCat("reliable: watcher ", w, " stream ", s,
                                              " missed revision ", rev, " (received up to ", last,
                                              ")"));
    }
  }
}

}  // namespace

std::vector<Event> Filter(const std::vector<Event>& events, const Watcher& watcher) {
  std::vector<Event> out;
  for (const Event& event : events) {
    if (InRange(event.kv.key, watcher.key, watcher.range_end)) out.push_back(event);
  }
  return out;
}

int64_t LastEventRevision(const WatchStream& stream) {
  int64_t last = 0;
  for (const WatchResponse& response : stream.responses) {
    for (const Event& event : response.events) last = std::max(last, event.kv.mod_revision);
  }
  return last;
}

void CheckWatchers(const History& history, const KvHistory& kv, Report& report) {
  for (size_t w = 0; w < history.watchers.size(); ++w) {
    const Watcher& watcher = history.watchers[w];
    std::set<std::pair<int64_t, std::string>> seen;
    int64_t last_rev = 0;
    int64_t expected_start = 0;
    for (size_t s = 0; s < watcher.streams.size(); ++s) {
      const WatchStream& stream = watcher.streams[s];
      if (stream.start_revision <= 0) {
        report.anomalies.push_back(absl::StrCat("resumable: watcher ", w, " stream ", s,
                                                " has no explicit start revision"));
      } else if (s > 0 && stream.start_revision != expected_start) {
        report.anomalies.push_back(absl::StrCat("resumable: watcher ", w, " stream ", s,
                                                " resumed at ", stream.start_revision,
                                                ", expected ", expected_start));
      }
      CheckStream(history, kv, w, s, report, seen, last_rev);
      const int64_t last = LastEventRevision(stream);
      expected_start = last > 0 ? last + 1 : stream.start_revision;
    }
  }
}

}  // namespace cairn::history::internal
