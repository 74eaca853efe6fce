// Key-value API: Get/Put/Delete with every etcd option, transactions, compaction.
//
// Obtain a Kv from Client::kv(). Kv is a cheap handle; copies share the client. Thread-safe.
// Each call exists as *Async (returns a Future) and blocking (returns StatusOr; fiber-aware).
// Errors: the server's status (see errors.h for kinds), DEADLINE_EXCEEDED, CANCELLED,
// UNAVAILABLE when no endpoint answered within the deadline.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "cairn/future.h"
#include "cairn/options.h"
#include "cairn/types.h"

namespace cairn {

namespace internal {
class Core;
}

enum class SortOrder { kNone, kAscend, kDescend };
enum class SortTarget { kKey, kVersion, kCreate, kMod, kValue };

// Range selection shared by Get, Delete and Watch: one key (default), [key, range_end),
// every key with prefix `key` (prefix = true), or every key >= key (from_key = true).
struct RangeSpec {
  std::string range_end;
  bool prefix = false;
  bool from_key = false;
};

struct GetOptions : RangeSpec {
  int64_t limit = 0;      // 0 = no limit; response.more tells if more keys exist
  Revision revision = 0;  // <= 0: latest
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
  bool serializable = false;  // local read on the member (may be stale)
  bool keys_only = false;
  bool count_only = false;
  Revision min_mod_revision = 0;
  Revision max_mod_revision = 0;
  Revision min_create_revision = 0;
  Revision max_create_revision = 0;
};

struct PutOptions {
  LeaseId lease = 0;
  bool prev_kv = false;
  bool ignore_value = false;  // keep the current value (key must exist)
  bool ignore_lease = false;  // keep the current lease (key must exist)
};

struct DeleteOptions : RangeSpec {
  bool prev_kv = false;
};

struct GetResponse {
  ResponseHeader header;
  std::vector<KeyValue> kvs;
  bool more = false;
  int64_t count = 0;
};

struct PutResponse {
  ResponseHeader header;
  bool has_prev_kv = false;
  KeyValue prev_kv;
};

struct DeleteResponse {
  ResponseHeader header;
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};

struct CompactResponse {
  ResponseHeader header;
};

// ---- Transactions ---------------------------------------------------------------------------

enum class CompareTarget { kVersion, kCreate, kMod, kValue, kLease };
enum class CompareResult { kEqual, kGreater, kLess, kNotEqual };

// One comparison: Cmp::Value("k") == "v", Cmp::Version("k") > 2, Cmp::CreateRevision("k") == 0,
// Cmp::ModRevision("k").WithPrefix() < 10, Cmp::Lease("k") == id. A missing key has version,
// create and mod revision 0. With a range, every key in the range must satisfy the comparison.
struct Compare {
  CompareTarget target = CompareTarget::kVersion;
  CompareResult result = CompareResult::kEqual;
  std::string key;
  std::string range_end;
  int64_t number = 0;  // version / revision / lease
  std::string value;   // for kValue
};

class Cmp {
 public:
  static Cmp Version(std::string key) { return Cmp(CompareTarget::kVersion, std::move(key)); }
  static Cmp CreateRevision(std::string key) { return Cmp(CompareTarget::kCreate, std::move(key)); }
  static Cmp ModRevision(std::string key) { return Cmp(CompareTarget::kMod, std::move(key)); }
  static Cmp Value(std::string key) { return Cmp(CompareTarget::kValue, std::move(key)); }
  static Cmp Lease(std::string key) { return Cmp(CompareTarget::kLease, std::move(key)); }

  Cmp& WithRange(std::string range_end) {
    c_.range_end = std::move(range_end);
    return *this;
  }
  Cmp& WithPrefix() {
    c_.range_end = PrefixEnd(c_.key);
    return *this;
  }

  // Numbers: version, create/mod revision, lease id. (Templates so that a literal 0 is a
  // number, not a null const char*.)
  template <typename N, std::enable_if_t<std::is_integral_v<N>, int> = 0>
  Compare operator==(N n) const {
    return Num(CompareResult::kEqual, static_cast<int64_t>(n));
  }
  template <typename N, std::enable_if_t<std::is_integral_v<N>, int> = 0>
  Compare operator!=(N n) const {
    return Num(CompareResult::kNotEqual, static_cast<int64_t>(n));
  }
  template <typename N, std::enable_if_t<std::is_integral_v<N>, int> = 0>
  Compare operator<(N n) const {
    return Num(CompareResult::kLess, static_cast<int64_t>(n));
  }
  template <typename N, std::enable_if_t<std::is_integral_v<N>, int> = 0>
  Compare operator>(N n) const {
    return Num(CompareResult::kGreater, static_cast<int64_t>(n));
  }
  Compare operator==(std::string v) const { return Str(CompareResult::kEqual, std::move(v)); }
  Compare operator!=(std::string v) const { return Str(CompareResult::kNotEqual, std::move(v)); }
  Compare operator<(std::string v) const { return Str(CompareResult::kLess, std::move(v)); }
  Compare operator>(std::string v) const { return Str(CompareResult::kGreater, std::move(v)); }
  Compare operator==(const char* v) const { return Str(CompareResult::kEqual, v); }
  Compare operator!=(const char* v) const { return Str(CompareResult::kNotEqual, v); }
  Compare operator<(const char* v) const { return Str(CompareResult::kLess, v); }
  Compare operator>(const char* v) const { return Str(CompareResult::kGreater, v); }

 private:
  Cmp(CompareTarget t, std::string key) {
    c_.target = t;
    c_.key = std::move(key);
  }
  Compare Num(CompareResult r, int64_t n) const {
    Compare c = c_;
    c.result = r;
    c.number = n;
    return c;
  }
  Compare Str(CompareResult r, std::string v) const {
    Compare c = c_;
    c.result = r;
    c.value = std::move(v);
    return c;
  }
  Compare c_;
};

class Txn;

// One operation inside a transaction.
struct Op {
  enum class Type { kGet, kPut, kDelete, kTxn };
  Type type = Type::kGet;
  std::string key;
  std::string value;
  GetOptions get;
  PutOptions put;
  DeleteOptions del;
  std::shared_ptr<const Txn> txn;  // for kTxn

  static Op Get(std::string key, GetOptions o = {});
  static Op Put(std::string key, std::string value, PutOptions o = {});
  static Op Delete(std::string key, DeleteOptions o = {});
  static Op Nested(Txn txn);
};

// Builder: Txn().If({Cmp::Value("k") == "v"}).Then({Op::Put("k", "w")}).Else({Op::Get("k")}).
// If/Then/Else append; an empty If always succeeds.
class Txn {
 public:
  Txn& If(std::vector<Compare> compares);
  Txn& Then(std::vector<Op> ops);
  Txn& Else(std::vector<Op> ops);

  const std::vector<Compare>& compares() const { return compares_; }
  const std::vector<Op>& success() const { return success_; }
  const std::vector<Op>& failure() const { return failure_; }

 private:
  std::vector<Compare> compares_;
  std::vector<Op> success_;
  std::vector<Op> failure_;
};

struct TxnResponse;

// The result of one Op, in the same order as the branch that ran.
struct OpResponse {
  Op::Type type = Op::Type::kGet;
  GetResponse get;
  PutResponse put;
  DeleteResponse del;
  std::shared_ptr<TxnResponse> txn;
};

struct TxnResponse {
  ResponseHeader header;
  bool succeeded = false;
  std::vector<OpResponse> responses;
};

class Kv {
 public:
  explicit Kv(std::shared_ptr<internal::Core> core) : core_(std::move(core)) {}

  Future<GetResponse> GetAsync(const std::string& key, const GetOptions& opts = {},
                               const CallOptions& call = {}) const;
  Future<PutResponse> PutAsync(const std::string& key, const std::string& value,
                               const PutOptions& opts = {}, const CallOptions& call = {}) const;
  Future<DeleteResponse> DeleteAsync(const std::string& key, const DeleteOptions& opts = {},
                                     const CallOptions& call = {}) const;
  Future<TxnResponse> CommitAsync(const Txn& txn, const CallOptions& call = {}) const;
  // Compacts history before `revision`; physical waits until the space is reclaimed.
  Future<CompactResponse> CompactAsync(Revision revision, bool physical = false,
                                       const CallOptions& call = {}) const;

  absl::StatusOr<GetResponse> Get(const std::string& key, const GetOptions& opts = {},
                                  const CallOptions& call = {}) const {
    return GetAsync(key, opts, call).Get();
  }
  absl::StatusOr<PutResponse> Put(const std::string& key, const std::string& value,
                                  const PutOptions& opts = {}, const CallOptions& call = {}) const {
    return PutAsync(key, value, opts, call).Get();
  }
  absl::StatusOr<DeleteResponse> Delete(const std::string& key, const DeleteOptions& opts = {},
                                        const CallOptions& call = {}) const {
    return DeleteAsync(key, opts, call).Get();
  }
  absl::StatusOr<TxnResponse> Commit(const Txn& txn, const CallOptions& call = {}) const {
    return CommitAsync(txn, call).Get();
  }
  absl::StatusOr<CompactResponse> Compact(Revision revision, bool physical = false,
                                          const CallOptions& call = {}) const {
    return CompactAsync(revision, physical, call).Get();
  }

 private:
  std::shared_ptr<internal::Core> core_;
};

}  // namespace cairn
