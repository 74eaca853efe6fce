// absl::Status <-> grpc::Status. Codes are numerically equal; messages pass through unchanged,
// so the etcd error table (server/base/errors.h) reaches clients verbatim.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace cairn::api {

grpc::Status ToGrpc(const absl::Status& status);

}  // namespace cairn::api
