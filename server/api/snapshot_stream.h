// The Maintenance.Snapshot stream: the client snapshot of docs/maintenance.md (the store's dump,
// padding, SHA-256 trailer) sent in chunks of kSnapshotChunkBytes with remaining_bytes, as etcd
// sends it, so that `etcdctl snapshot save` accepts it. A producer thread per stream reads the
// published view's RocksDB snapshot and waits for each write to complete (flow control: memory
// is one chunk per stream); the store keeps serving meanwhile. At most kMaxSnapshotStreams run at
// once in a process (each holds a thread and a RocksDB snapshot); one more fails at once with
// ResourceExhausted "etcdserver: too many requests" (docs/limits.md).
//
// Thread safety: the reactor is owned by gRPC; it deletes itself in OnDone after joining its
// producer thread.
#pragma once

#include <grpcpp/support/server_callback.h>

#include "etcdserverpb/rpc.pb.h"
#include "server/api/auth_gate.h"
#include "server/api/gate.h"
#include "server/etcdserver/server.h"

namespace cairn::api {

inline constexpr size_t kSnapshotChunkBytes = 32 * 1024;  // etcd's chunk size
inline constexpr int kMaxSnapshotStreams = 4;

// Snapshot streams running now (for tests and /metrics).
int SnapshotStreamsRunning();

// `caller` must be root when auth is enabled (AuthorizeMaintenance).
grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* StartSnapshotStream(
    etcdserver::Server* server, RequestGate* gate, const Caller& caller);

}  // namespace cairn::api
