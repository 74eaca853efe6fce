// The etcd error table on the server side: every error a client can see, with etcd's gRPC code
// and exact message (clients match on the strings). The table itself is common/etcd_errors.h,
// shared with the client, which parses these statuses back; docs/errors.md. Lower layers return
// these as absl::Status values; server/api turns an absl::Status into a grpc::Status with the same
// code and message. Pinned row by row by tests/unit/common/etcd_errors_test.cc. Thread-safe (pure).
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "common/etcd_errors.h"

namespace cairn::base {

// One kind per row of the shared table (etcd's Go names: kFutureRev, kLeaseExist, ...).
using ErrorKind = etcd::EtcdError;
using ErrorRow = etcd::EtcdErrorRow;

// The whole table, in ErrorKind order.
const ErrorRow* ErrorTable(size_t* size);

// The status for `kind`: etcd's code and message.
absl::Status MakeError(ErrorKind kind);

// True if `status` is exactly the table's row for `kind`.
bool IsError(const absl::Status& status, ErrorKind kind);

}  // namespace cairn::base
