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
// Items are not bound to a lease: they survive their producer. An item handed to a consumer
// that then crashes is lost (no redelivery); put it back with Enqueue if processing fails.
//
// Thread-safe; calls are fiber-aware.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/client.h"

namespace cairn::recipes {

inline constexpr int kQueueMaxPriority = 65535;

struct QueueItem {
  std::string key;
  std::string value;
  int priority = 0;
  Revision create_revision = 0;
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
  // Takes the next item, waiting while the queue is empty. `call` bounds the whole wait (unset:
  // no limit). Errors: DEADLINE_EXCEEDED / CANCELLED, server errors.
  absl::StatusOr<QueueItem> Dequeue(const CallOptions& call = {}) const;
  // Takes the next item if there is one.
  absl::StatusOr<std::optional<QueueItem>> TryDequeue(const CallOptions& call = {}) const;
  // Number of items.
  absl::StatusOr<int64_t> Size(const CallOptions& call = {}) const;
  Future<int64_t> SizeAsync(const CallOptions& call = {}) const;

 private:
  // One attempt; `revision` gets the read's revision (to watch from when empty).
  absl::StatusOr<std::optional<QueueItem>> TakeOnce(const CallOptions& rpc,
                                                    Revision* revision) const;

  Kv kv_;
  WatchClient watch_;
  std::string name_;
};

}  // namespace cairn::recipes
