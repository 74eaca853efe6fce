// The etcd Watch service: one bidirectional stream carries many watchers (WatchStream below is
// one stream). Semantics follow etcd 3.4/3.5 v3rpc: auto watch ids from 0, client-chosen ids
// (a duplicate is answered created+canceled with watch_id -1), "created" before any event, cancel
// answers canceled, a progress request is answered with watch_id -1 once every watcher of the
// stream is synced, a compacted start revision cancels with compact_revision set. A half-closed
// stream keeps delivering until the client goes away, as etcd's does.
// Limits (docs/limits.md): kMaxQueuedBytes of events per stream; beyond it the watcher falls
// behind into catch-up from the store (WatchHub) instead of growing memory or blocking writes.
// Thread-safe.
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/api/gate.h"
#include "server/etcdserver/server.h"
#include "server/mvcc/watch_hub.h"

namespace cairn::api {

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  WatchService(etcdserver::Server* server, RequestGate* gate) : server_(server), gate_(gate) {}
  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* ctx) override;

 private:
  etcdserver::Server* server_;
  RequestGate* gate_;
};

}  // namespace cairn::api
