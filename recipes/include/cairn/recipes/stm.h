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

 private:
  absl::StatusOr<const Read*> Fetch(const std::string& key);

  Kv kv_;
  Isolation iso_;
  CallOptions call_;
  std::map<std::string, Read> reads_;
  std::map<std::string, Write> writes_;
  Revision snapshot_revision_ = 0;  // serializable levels: revision of the first read
};

// Runs `apply` transactionally (see file comment). Returns the committed Txn's response.
// Errors: INVALID_ARGUMENT for max_attempts <= 0 or a null apply; apply's error; ABORTED after
// max_attempts conflicts; DEADLINE_EXCEEDED / CANCELLED; server errors.
absl::StatusOr<TxnResponse> RunStm(const Kv& kv, const std::function<absl::Status(Stm&)>& apply,
                                   const StmOptions& options = {});

// RunStm's async form (see async.h); options.call bounds and cancels it. `kv` must outlive the
// future's completion; `apply` is copied.
Future<TxnResponse> RunStmAsync(const Kv& kv, std::function<absl::Status(Stm&)> apply,
                                const StmOptions& options = {});

}  // namespace cairn::recipes
