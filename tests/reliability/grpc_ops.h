// Translation between the checker's plain requests (tests/history/history.h) and etcd's gRPC API.
// Thread-safe (stateless).
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "tests/history/history.h"

namespace cairn::reliability {

// Sends `request` (a plain Range / Put / DeleteRange, or a Txn) with a deadline; on OK fills
// *response with the header revision, `succeeded` and each op's answer.
grpc::Status Execute(etcdserverpb::KV::Stub& stub, const history::Request& request, int timeout_ms,
                     history::Response* response);

history::WatchResponse ToHistory(const etcdserverpb::WatchResponse& response);

}  // namespace cairn::reliability
