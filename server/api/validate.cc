#include "server/api/validate.h"

#include <set>
#include <string>
#include <vector>

#include "server/base/errors.h"

namespace cairn::api {

using base::ErrorKind;
using base::MakeError;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

absl::Status ValidateRange(const etcdserverpb::RangeRequest& r) {
  if (r.key().empty()) return MakeError(ErrorKind::kEmptyKey);
  return absl::OkStatus();
}

absl::Status ValidatePut(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return MakeError(ErrorKind::kEmptyKey);
  if (r.ignore_value() && !r.value().empty()) return MakeError(ErrorKind::kValueProvided);
  if (r.ignore_lease() && r.lease() != 0) return MakeError(ErrorKind::kLeaseProvided);
  return absl::OkStatus();
}

absl::Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r) {
  if (r.key().empty()) return MakeError(ErrorKind::kEmptyKey);
  return absl::OkStatus();
}

namespace {

absl::Status CheckTxn(const TxnRequest& r, int max_txn_ops);

absl::Status CheckOp(const RequestOp& op, int max_txn_ops) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      return ValidateRange(op.request_range());
    case RequestOp::kRequestPut:
      return ValidatePut(op.request_put());
    case RequestOp::kRequestDeleteRange:
      return ValidateDeleteRange(op.request_delete_range());
    case RequestOp::kRequestTxn:
      return CheckTxn(op.request_txn(), max_txn_ops);
    default:
      // An op with no request set: etcd answers "key not found".
      return MakeError(ErrorKind::kKeyNotFound);
  }
}

absl::Status CheckTxn(const TxnRequest& r, int max_txn_ops) {
  int opc = r.compare_size();
  opc = std::max(opc, r.success_size());
  opc = std::max(opc, r.failure_size());
  if (opc > max_txn_ops) return MakeError(ErrorKind::kTooManyOps);
  for (const auto& c : r.compare()) {
    if (c.key().empty()) return MakeError(ErrorKind::kEmptyKey);
  }
  for (const auto* ops : {&r.success(), &r.failure()}) {
    for (const RequestOp& op : *ops) {
      absl::Status s = CheckOp(op, max_txn_ops - opc);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// A delete interval: [begin, end) by plain byte order, or the point `begin` when end is empty.
// As in etcd, a range_end of "\0" is taken literally here (an empty interval), so a txn may delete
// [k, "\0") and put keys >= k: etcd accepts that and so must we. (With an ignore_value or
// ignore_lease put of a deleted key, etcd 3.4 then panics while applying; cairn answers "key not
// found" and writes nothing, see KvStore::Apply.)
struct Interval {
  std::string begin;
  std::string end;
  bool Contains(const std::string& k) const {
    if (end.empty()) return k == begin;
    return begin <= k && k < end;
  }
};

bool Intersects(const std::vector<Interval>& dels, const std::string& k) {
  for (const Interval& iv : dels) {
    if (iv.Contains(k)) return true;
  }
  return false;
}

// etcd's checkIntervals: within one branch, a key may be put once and not also deleted; the
// success and failure branches of a nested txn are exclusive, so they may put the same key.
absl::Status CheckIntervals(const google::protobuf::RepeatedPtrField<RequestOp>& reqs,
                            std::set<std::string>* puts_out, std::vector<Interval>* dels_out) {
  std::vector<Interval> dels;
  for (const RequestOp& op : reqs) {
    if (!op.has_request_delete_range()) continue;
    const auto& d = op.request_delete_range();
    dels.push_back(Interval{d.key(), d.range_end()});
  }
  std::set<std::string> puts;
  for (const RequestOp& op : reqs) {
    if (!op.has_request_txn()) continue;
    std::set<std::string> puts_then, puts_else;
    std::vector<Interval> dels_then, dels_else;
    absl::Status s = CheckIntervals(op.request_txn().success(), &puts_then, &dels_then);
    if (!s.ok()) return s;
    s = CheckIntervals(op.request_txn().failure(), &puts_else, &dels_else);
    if (!s.ok()) return s;
    for (const std::string& k : puts_then) {
      if (puts.count(k) || Intersects(dels, k)) return MakeError(ErrorKind::kDuplicateKey);
      puts.insert(k);
    }
    for (const std::string& k : puts_else) {
      if (puts.count(k) && !puts_then.count(k)) return MakeError(ErrorKind::kDuplicateKey);
      if (Intersects(dels, k)) return MakeError(ErrorKind::kDuplicateKey);
      puts.insert(k);
    }
    dels.insert(dels.end(), dels_then.begin(), dels_then.end());
    dels.insert(dels.end(), dels_else.begin(), dels_else.end());
  }
  for (const RequestOp& op : reqs) {
    if (!op.has_request_put()) continue;
    const std::string& k = op.request_put().key();
    if (puts.count(k) || Intersects(dels, k)) return MakeError(ErrorKind::kDuplicateKey);
    puts.insert(k);
  }
  *puts_out = std::move(puts);
  *dels_out = std::move(dels);
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTxn(const TxnRequest& r, int max_txn_ops) {
  absl::Status s = CheckTxn(r, max_txn_ops);
  if (!s.ok()) return s;
  std::set<std::string> puts;
  std::vector<Interval> dels;
  s = CheckIntervals(r.success(), &puts, &dels);
  if (!s.ok()) return s;
  return CheckIntervals(r.failure(), &puts, &dels);
}

}  // namespace cairn::api
