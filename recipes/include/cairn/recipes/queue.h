// Queue: a multi-producer, multi-consumer work queue with priorities (etcd's recipes Queue and
// PriorityQueue; Curator's DistributedPriorityQueue).
//
// Key layout: "<name>/<priority as 5 decimal digits>/<unique suffix>" = the item's value. Items
// are taken lowest priority number first and, within one priority, in enqueue order (create
// revision). Each item is taken exactly once however many consumers compete: a consumer deletes
// the item in a Txn guarded by its create revision, and only the Txn that deletes it returns it.
// A blocking Dequeue on an empty queue waits on a watch of the prefix (no polling); every
// enqueue wakes all waiting consumers, one of which wins the item.
//
// Items are not bound to a lease: they survive their producer. An item taken with Dequeue by a
// consumer that then crashes is lost (no redelivery); put it back with Enqueue if processing
// fails.
//
// Guaranteed processing (Curator's lockPath): Claim() instead marks the oldest unclaimed item
// with a claim key "<name>!claim/<priority>/<suffix>" on the consumer's session lease, leaving
// the item in place; Ack() deletes item and claim together, Release() only the claim. If the
// consumer's session ends first, the claim expires and the item is claimed again by another
// consumer (at-least-once). A queue is used either with Dequeue or with Claim/Ack, not both
// (Dequeue ignores claims). A waiting Claim watches items and claims (woken by every enqueue,
// claim and release of the queue).
//
// Thread-safe; calls are fiber-aware.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/client.h"
#include "cairn/recipes/async.h"
#include "cairn/recipes/session.h"

namespace cairn::recipes {

inline constexpr int kQueueMaxPriority = 65535;

struct QueueItem {
  std::string key;
  std::string value;
  int priority = 0;
  Revision create_revision = 0;
};

// An item claimed for processing (see Claim).
struct ClaimedItem {
  QueueItem item;
  std::string claim_key;
  Revision claim_revision = 0;  // create revision of the claim key
};

class Queue {
 public:
  // An empty name is reported by the calls (INVALID_ARGUMENT).
  Queue(const Client& client, std::string name)
      : kv_(client.kv()), watch_(client.watch()), name_(std::move(name)) {}
  Queue(Kv kv, WatchClient watch, std::string name)
      : kv_(std::move(kv)), watch_(std::move(watch)), name_(std::move(name)) {}

  // Adds an item; returns its key. `priority` in [0, kQueueMaxPriority], lower first
  // (INVALID_ARGUMENT otherwise).
  absl::StatusOr<std::string> Enqueue(const std::string& value, int priority = 0,
                                      const CallOptions& call = {}) const;
  // Enqueue's async form (each attempt's Txn starts from the completion of the one before).
  Future<std::string> EnqueueAsync(const std::string& value, int priority = 0,
                                   const CallOptions& call = {}) const;
  // Takes the next item, waiting while the queue is empty. `call` bounds the whole wait (unset:
  // no limit). Errors: DEADLINE_EXCEEDED / CANCELLED, server errors.
  absl::StatusOr<QueueItem> Dequeue(const CallOptions& call = {}) const;
  // Dequeue's async form, holding no thread while it waits (each read and take starts from the
  // completion of the one before; an empty queue is a watch; see async.h). Canceling never loses
  // an item: the take itself is bounded only by the deadline.
  Future<QueueItem> DequeueAsync(const CallOptions& call = {}) const;
  // Takes the next item if there is one.
  absl::StatusOr<std::optional<QueueItem>> TryDequeue(const CallOptions& call = {}) const;
  Future<std::optional<QueueItem>> TryDequeueAsync(const CallOptions& call = {}) const;
  // Claims the next unclaimed item for `session`, waiting while there is none. Errors:
  // FAILED_PRECONDITION (ended session), the session's loss status, DEADLINE_EXCEEDED /
  // CANCELLED, server errors.
  absl::StatusOr<ClaimedItem> Claim(const Session& session, const CallOptions& call = {}) const;
  // Claim's async form, holding no thread while it waits (each read and the claim start from the
  // completion of the one before; nothing claimable is a watch; see async.h). This object and
  // `session` must outlive the future's completion. The claim itself is bounded only by the
  // deadline; one made for a call canceled meanwhile is given back before the call reports.
  Future<ClaimedItem> ClaimAsync(const Session& session, const CallOptions& call = {}) const;
  // One attempt: nullopt when every item is claimed or the queue is empty.
  absl::StatusOr<std::optional<ClaimedItem>> TryClaim(const Session& session,
                                                      const CallOptions& call = {}) const;
  // Removes the item and its claim. FAILED_PRECONDITION when the claim was lost (its session
  // ended; the item may be processed by another consumer).
  absl::Status Ack(const ClaimedItem& claimed, const CallOptions& call = {}) const;
  // Gives the item back (deletes the claim only). FAILED_PRECONDITION when the claim was lost.
  absl::Status Release(const ClaimedItem& claimed, const CallOptions& call = {}) const;

  // Number of items (claimed ones included).
  absl::StatusOr<int64_t> Size(const CallOptions& call = {}) const;
  Future<int64_t> SizeAsync(const CallOptions& call = {}) const;

 private:
  absl::Status EndClaim(const ClaimedItem& claimed, bool ack, const CallOptions& call) const;

  Kv kv_;
  WatchClient watch_;
  std::string name_;
};

}  // namespace cairn::recipes
