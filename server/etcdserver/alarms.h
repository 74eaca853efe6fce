// Alarms: the cluster's replicated alarm list (etcd's AlarmStore): which member raised which alarm
// (NOSPACE, CORRUPT). Changes arrive as committed `InternalRequest.alarm` entries and are written
// in the entry's RocksDB batch (docs/keyspace.md, "Alarms"); the list therefore survives restarts
// and travels in state-machine snapshots. A copy is kept in memory for readers (the request gate
// asks on every write whether NOSPACE is raised).
//
// Thread safety: Apply and Load run on the applier thread (Load also at open); List, Has and
// HasAny are thread-safe and never block on I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "etcdserverpb/rpc.pb.h"
#include "rocksdb/utilities/write_batch_with_index.h"
#include "server/storage/backend.h"

namespace cairn::etcdserver {

// The `meta` key of one alarm: "alarm/" + 16 lower-case hex digits of the member id + "/" + the
// AlarmType number in decimal.
std::string AlarmKey(uint64_t member_id, etcdserverpb::AlarmType type);
// The prefix of every alarm key.
inline constexpr char kAlarmPrefix[] = "alarm/";

class Alarms {
 public:
  explicit Alarms(storage::Backend* backend) : backend_(backend) {}

  // Reads the list from the backend (at open, and after a snapshot install).
  void Load();
  // Applies an ACTIVATE or DEACTIVATE as etcd's applier does, writing the change to `wb`:
  //   ACTIVATE adds the alarm (if new) and answers it; as in etcd 3.4 this holds for type NONE
  //   too (listed as "memberID:<id>" by etcdctl). DEACTIVATE removes it and answers it, or
  //   answers none if absent.
  // GET answers the alarms of type `alarm` (all of them for NONE), changing nothing.
  etcdserverpb::AlarmResponse Apply(const etcdserverpb::AlarmRequest& request,
                                    rocksdb::WriteBatchBase* wb);

  // The alarms of `type` (every alarm for NONE), ordered by member id then type.
  std::vector<etcdserverpb::AlarmMember> List(
      etcdserverpb::AlarmType type = etcdserverpb::NONE) const;
  // True if any member has raised `type`. Lock-free (a request-path check).
  bool HasAny(etcdserverpb::AlarmType type) const {
    return type == etcdserverpb::NOSPACE   ? nospace_.load(std::memory_order_acquire)
           : type == etcdserverpb::CORRUPT ? corrupt_.load(std::memory_order_acquire)
                                           : false;
  }

 private:
  void UpdateFlagsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::Backend* const backend_;
  mutable absl::Mutex mu_;
  std::set<std::pair<uint64_t, int>> alarms_ ABSL_GUARDED_BY(mu_);  // (member id, type)
  std::atomic<bool> nospace_{false};
  std::atomic<bool> corrupt_{false};
};

}  // namespace cairn::etcdserver
