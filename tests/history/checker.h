// Checks a History for linearizability against the etcd KV model and for etcd's watch
// guarantees. The algorithm, and why it is sound, is in docs/history_checker.md.
//
//   cairn::history::Report report = cairn::history::Check(recorder.Snapshot());
//   EXPECT_TRUE(report.ok()) << report.Summary();
//
// Pure function of its input; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/history/history.h"

namespace cairn::history {

struct CheckOptions {
  // Model applications the gap search may spend before giving up (reported as an anomaly of
  // kind "search-budget", never as a pass).
  int64_t search_budget = 1'000'000;
};

struct Report {
  // One line each, "<kind>: <details>". Kinds: duplicate-revision, no-writer, search-budget,
  // write-mismatch, read-mismatch, bad-revision, real-time, future-read, failed-write-visible,
  // ordered, unique, atomic, reliable, resumable, event-mismatch, bookmark.
  std::vector<std::string> anomalies;
  std::vector<std::string> notes;
  int64_t ops_checked = 0;       // ok operations checked against the model.
  int64_t unknown_resolved = 0;  // unknown-outcome writes placed at a revision.
  int64_t events_checked = 0;    // watch events compared with the KV history.
  int64_t max_revision = 0;
  bool ok() const { return anomalies.empty(); }
  // Counts and the first anomalies, for a test's failure message.
  std::string Summary() const;
  // True when some anomaly starts with `kind` + ":".
  bool Has(const std::string& kind) const;
};

Report Check(const History& history, const CheckOptions& options = {});

}  // namespace cairn::history
