// Membership: the cluster's members as applied from the log, persisted in the `meta` family
// (docs/cluster.md, "Membership in RocksDB") and mirrored in memory for readers.
//
// Thread safety: thread-safe. Mutators are called by the applier thread only; readers from any.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cairnpb/peer.pb.h"
#include "rocksdb/write_batch.h"
#include "server/raft/message.h"
#include "server/storage/backend.h"

namespace cairn::etcdserver {

class Membership {
 public:
  explicit Membership(storage::Backend* backend) : backend_(backend) {}

  // Reads the members and removed ids from the backend (at open, and after a snapshot install).
  void Load();

  // Applier: each writes its change to `wb` (the caller writes the batch) and updates the mirror.
  void Add(const cairnpb::Member& member,
           rocksdb::WriteBatchBase* wb);  // add, or promote a learner
  void Remove(uint64_t id, rocksdb::WriteBatchBase* wb);
  void SetAttributes(uint64_t id, const std::string& name,
                     const std::vector<std::string>& client_urls, rocksdb::WriteBatchBase* wb);
  void SetPeerUrls(uint64_t id, const std::vector<std::string>& peer_urls,
                   rocksdb::WriteBatchBase* wb);

  // Readers.
  std::vector<cairnpb::Member> Members() const;  // sorted by id
  std::optional<cairnpb::Member> Get(uint64_t id) const;
  bool IsRemoved(uint64_t id) const;
  // Without copying the record: asked on every proposal and linearizable read.
  bool IsLearner(uint64_t id) const;
  raft::ConfState ConfState() const;
  // The member whose peer URLs intersect `peer_urls` (0 when none).
  uint64_t FindByPeerUrls(const std::vector<std::string>& peer_urls) const;

 private:
  void PutLocked(const cairnpb::Member& m, rocksdb::WriteBatchBase* wb)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::Backend* backend_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, cairnpb::Member> members_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> removed_ ABSL_GUARDED_BY(mu_);
};

std::string MemberKey(uint64_t id);

}  // namespace cairn::etcdserver
