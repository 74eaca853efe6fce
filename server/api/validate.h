// Request checks done before a request is proposed, as etcd's v3rpc does (checkPutRequest,
// checkTxnRequest, checkIntervals, ...): same order, same errors. Pure, thread-safe.
#pragma once

#include "absl/status/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace cairn::api {

absl::Status ValidateRange(const etcdserverpb::RangeRequest& r);
absl::Status ValidatePut(const etcdserverpb::PutRequest& r);
absl::Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r);
// Op counts against `max_txn_ops`, empty keys, then put/delete overlaps (duplicate keys).
absl::Status ValidateTxn(const etcdserverpb::TxnRequest& r, int max_txn_ops);

}  // namespace cairn::api
