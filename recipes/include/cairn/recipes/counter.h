// Counter: a shared 64-bit integer stored as decimal text in one key (Curator's
// DistributedAtomicLong / SharedCount).
//
// Get reads it (a missing key reads as 0). Add and CompareAndSet are optimistic: read, then a
// Txn guarded by the key's mod revision; a conflicting writer makes them read again and retry,
// at most kMaxCounterAttempts times (ABORTED after that) and within `call`'s deadline.
// A value that is not a decimal int64 is FAILED_PRECONDITION; overflow of Add is OUT_OF_RANGE.
// The key is not bound to a lease (counters outlive sessions).
//
// Thread-safe (no state besides the key name); calls are fiber-aware.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/client.h"

namespace cairn::recipes {

inline constexpr int kMaxCounterAttempts = 1000;

class Counter {
 public:
  // An empty key is reported by the calls (INVALID_ARGUMENT).
  Counter(const Client& client, std::string key) : kv_(client.kv()), key_(std::move(key)) {}
  Counter(Kv kv, std::string key) : kv_(std::move(kv)), key_(std::move(key)) {}

  absl::StatusOr<int64_t> Get(const CallOptions& call = {}) const;
  Future<int64_t> GetAsync(const CallOptions& call = {}) const;
  // Adds `delta` atomically; returns the new value.
  absl::StatusOr<int64_t> Add(int64_t delta, const CallOptions& call = {}) const;
  // Sets `desired` if the value is `expected`; returns whether it did.
  absl::StatusOr<bool> CompareAndSet(int64_t expected, int64_t desired,
                                     const CallOptions& call = {}) const;
  // Sets the value unconditionally.
  absl::Status Set(int64_t value, const CallOptions& call = {}) const;
  // Async forms holding no thread (each read and Txn starts from the completion of the one
  // before); errors as the blocking calls; SetAsync completes with true.
  Future<int64_t> AddAsync(int64_t delta, const CallOptions& call = {}) const;
  Future<bool> CompareAndSetAsync(int64_t expected, int64_t desired,
                                  const CallOptions& call = {}) const;
  Future<bool> SetAsync(int64_t value, const CallOptions& call = {}) const;

  const std::string& key() const { return key_; }

 private:
  Kv kv_;
  std::string key_;
};

}  // namespace cairn::recipes
