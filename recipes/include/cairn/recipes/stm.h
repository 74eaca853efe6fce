// STM: software transactional memory over the key space (etcd's concurrency.STM).
//
//   auto r = cairn::recipes::RunStm(client->kv(), [](cairn::recipes::Stm& stm) -> absl::Status {
//     auto a = stm.Get("balance/a");
//     if (!a.ok()) return a.status();
//     stm.Put("balance/a", ...);
//     return absl::OkStatus();
//   });
//
// `apply` reads through the Stm (reads are cached per attempt) and buffers writes; RunStm then
// commits the writes in one Txn guarded according to the isolation level. When the guard fails
// (a conflicting write committed meanwhile) the attempt is discarded and `apply` runs again from
// scratch, up to StmOptions::max_attempts times (ABORTED after that) and within the deadline.
// `apply` must therefore have no side effects besides the Stm. An error returned by `apply`
// aborts the transaction: nothing is written and that error is returned.
//
// Isolation levels (as etcd's):
//  - kSerializableSnapshot (default): every read is at the revision of the first read, and the
//    commit fails if any key read or written changed after that revision. Serializable.
//  - kSerializable: reads at the revision of the first read; the commit fails if a key read
//    changed after that revision (keys only written are not checked).
//  - kRepeatableReads: reads at the latest revision, each key read once per attempt; the
//    commit fails if a key read changed after it was read.
//  - kReadCommitted: reads at the latest revision; the commit is unconditional.
// The writes of one commit are limited by the server's operations-per-Txn limit (128 by
// default, INVALID_ARGUMENT "too many operations in txn request" beyond it).
//
// RunStm is thread-safe; an Stm is used by one `apply` call on one thread. Fiber-aware.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/client.h"
#include "cairn/recipes/async.h"

namespace cairn::recipes {

enum class Isolation { kSerializableSnapshot, kSerializable, kRepeatableReads, kReadCommitted };

struct StmOptions {
  Isolation isolation = Isolation::kSerializableSnapshot;
  // Attempts before giving up with ABORTED (> 0).
  int max_attempts = 64;
  // Keys read in one Range before the first attempt (cuts round trips).
  std::vector<std::string> prefetch;
  // Deadline and cancel of the whole transaction, retries included.
  CallOptions call;
};

class Stm {
 public:
  // The value of `key` ("" when missing; use Exists/Rev to tell). Errors: the read's.
  absl::StatusOr<std::string> Get(const std::string& key);
  // Whether `key` exists (as seen by this transaction).
  absl::StatusOr<bool> Exists(const std::string& key);
  // The key's mod revision as read (0 when missing).
  absl::StatusOr<Revision> Rev(const std::string& key);
  void Put(const std::string& key, std::string value, PutOptions opts = {});
  void Delete(const std::string& key);

  // Internal.
  struct Read {
    bool exists = false;
    KeyValue kv;
    Revision read_revision = 0;  // header revision of the read
  };
  struct Write {
    bool is_delete = false;
    std::string value;
    PutOptions opts;
  };
  Stm(Kv kv, Isolation isolation, CallOptions call)
      : kv_(std::move(kv)), iso_(isolation), call_(std::move(call)) {}
  void Reset();
  absl::Status Prefetch(const std::vector<std::string>& keys);
  Txn MakeCommit() const;
  // RunStmAsync's mode: a read of a key not read yet in this attempt makes no RPC; it records
  // the key (TakeMissed) and fails with UNAVAILABLE, and `apply` runs again once it is read.
  void DeferReads() { defer_ = true; }
  std::vector<std::string> TakeMissed();
  // Drops the writes (not the reads) before `apply` runs again within one attempt.
  void ClearWrites() { writes_.clear(); }
  // The options of the read of `key` (its revision, for the snapshot levels).
  GetOptions ReadOptions() const;
  // Records a read of `key` (its response to ReadOptions' Get).
  const Read* Store(const std::string& key, const GetResponse& r);

 private:
  absl::StatusOr<const Read*> Fetch(const std::string& key);

  Kv kv_;
  Isolation iso_;
  CallOptions call_;
  std::map<std::string, Read> reads_;
  std::map<std::string, Write> writes_;
  Revision snapshot_revision_ = 0;  // serializable levels: revision of the first read
  bool defer_ = false;
  std::vector<std::string> missed_;  // deferred reads, in order (defer_)
};

// Runs `apply` transactionally (see file comment). Returns the committed Txn's response.
// Errors: INVALID_ARGUMENT for max_attempts <= 0 or a null apply; apply's error; ABORTED after
// max_attempts conflicts; DEADLINE_EXCEEDED / CANCELLED; server errors.
absl::StatusOr<TxnResponse> RunStm(const Kv& kv, const std::function<absl::Status(Stm&)>& apply,
                                   const StmOptions& options = {});

// RunStm's async form, holding no thread: `apply` runs on a client thread, and a read of a key
// not yet read in the attempt makes it stop (the read fails with UNAVAILABLE) and run again from
// the start once the key is read, asynchronously; so `apply` may run more than once per attempt
// and must not block. options.call bounds and cancels it. `apply` is copied.
Future<TxnResponse> RunStmAsync(const Kv& kv, std::function<absl::Status(Stm&)> apply,
                                const StmOptions& options = {});

}  // namespace cairn::recipes
