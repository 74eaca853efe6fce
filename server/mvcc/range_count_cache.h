// RangeCountCache: what a paginated range already knows about the rest of its range.
//
// A Range with a limit still answers `count`, the number of keys in the whole range. A client
// that pages through a range (Kubernetes' lists, etcd's mirror, recipes::PrefixCache) asks for
// [start, end) at a pinned revision, then for [last key + "\0", end) at the same revision, and so
// on: counting each page by walking to `end` makes a full pagination of N keys walk N^2 / (2 x
// page) keys. The keys of a range at a revision never change (a compaction only refuses
// revisions below it), so after answering a page the store remembers how many keys the page's
// range holds and how many remain past its last key; the next page (or the same page asked again,
// as a list's first page is) takes its count from here and walks only the keys it returns.
//
// Thread-safe. Bounded by kRangeCountCacheEntries (docs/limits.md): the least recently used
// entry goes first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace cairn::mvcc {

// Paginated ranges whose next page's count is remembered at once.
inline constexpr size_t kRangeCountCacheEntries = 64;
// A range whose start and end together are longer is not remembered (the cache's memory stays
// under kRangeCountCacheEntries x this, whatever the keys).
inline constexpr size_t kRangeCountCacheKeyBytes = 4096;

class RangeCountCache {
 public:
  // The number of keys of [start, end) at `revision`, if an earlier page left it here.
  std::optional<int64_t> Find(const std::string& start, const std::string& end, int64_t revision)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    for (Entry& e : entries_) {
      if (e.revision == revision && e.start == start && e.end == end) {
        e.used = ++tick_;
        ++hits_;
        return e.count;
      }
    }
    return std::nullopt;
  }

  // Remembers that [start, end) holds `count` keys at `revision` (unless the two are longer than
  // kRangeCountCacheKeyBytes).
  void Remember(std::string start, std::string end, int64_t revision, int64_t count)
      ABSL_LOCKS_EXCLUDED(mu_) {
    if (start.size() + end.size() > kRangeCountCacheKeyBytes) return;
    absl::MutexLock l(&mu_);
    Entry* slot = nullptr;
    for (Entry& e : entries_) {
      if (e.revision == revision && e.start == start && e.end == end) {
        slot = &e;
        break;
      }
      if (entries_.size() == kRangeCountCacheEntries && (!slot || e.used < slot->used)) slot = &e;
    }
    if (!slot) slot = &entries_.emplace_back();
    *slot = Entry{std::move(start), std::move(end), revision, count, ++tick_};
  }

  // How many Finds found their count (for tests).
  uint64_t hits() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    return hits_;
  }

  // Forgets everything (a snapshot install replaced the store).
  void Clear() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    entries_.clear();
  }

 private:
  struct Entry {
    std::string start;
    std::string end;
    int64_t revision = 0;
    int64_t count = 0;
    uint64_t used = 0;  // tick_ at the last Find or Remember
  };

  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t tick_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cairn::mvcc
