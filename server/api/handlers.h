// Handlers: the etcd v3 client API of one member, transport-neutral. The gRPC services (and the
// HTTP/JSON gateway to come) parse a request, call the handler and send what `done` reports; no
// transport reaches into the member's store, lessor or backend.
//
// Every handler first passes the RequestGate (admission, per-method counting; later auth,
// permissions and alarms), then validates as etcd does, then works through the member's API:
// writes are proposed and `done` runs once applied; linearizable reads wait for a ReadIndex
// barrier. `request` and `response` are the caller's and must stay valid until `done` runs;
// `response` is filled only when `done` gets OK. `done` runs exactly once, on any thread (a gRPC
// thread, the applier, a read-pool or the admin thread), and must not block.
//
// Thread safety: thread-safe. The Server and the gate must outlive the handlers.
#pragma once

#include "etcdserverpb/rpc.pb.h"
#include "server/api/gate.h"
#include "server/etcdserver/server.h"

namespace cairn::api {

// The version reported in Status: the etcd API level cairn implements (clients compare it to
// enable features). cairn's own version is printed by `cairn --version`.
inline constexpr const char* kEtcdApiVersion = "3.5.0";

class Handlers {
 public:
  using Done = RequestGate::Done;

  Handlers(etcdserver::Server* server, RequestGate* gate) : server_(server), gate_(gate) {}

  // KV
  void Range(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp, Done done);
  void Put(const etcdserverpb::PutRequest& req, etcdserverpb::PutResponse* resp, Done done);
  void DeleteRange(const etcdserverpb::DeleteRangeRequest& req,
                   etcdserverpb::DeleteRangeResponse* resp, Done done);
  void Txn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp, Done done);
  void Compact(const etcdserverpb::CompactionRequest& req, etcdserverpb::CompactionResponse* resp,
               Done done);
  // Maintenance
  void Status(const etcdserverpb::StatusRequest& req, etcdserverpb::StatusResponse* resp,
              Done done);
  void MoveLeader(const etcdserverpb::MoveLeaderRequest& req,
                  etcdserverpb::MoveLeaderResponse* resp, Done done);
  void Alarm(const etcdserverpb::AlarmRequest& req, etcdserverpb::AlarmResponse* resp, Done done);
  void Defragment(const etcdserverpb::DefragmentRequest& req,
                  etcdserverpb::DefragmentResponse* resp, Done done);
  void Hash(const etcdserverpb::HashRequest& req, etcdserverpb::HashResponse* resp, Done done);
  void HashKV(const etcdserverpb::HashKVRequest& req, etcdserverpb::HashKVResponse* resp,
              Done done);
  // Cluster
  void MemberList(const etcdserverpb::MemberListRequest& req,
                  etcdserverpb::MemberListResponse* resp, Done done);
  void MemberAdd(const etcdserverpb::MemberAddRequest& req, etcdserverpb::MemberAddResponse* resp,
                 Done done);
  void MemberRemove(const etcdserverpb::MemberRemoveRequest& req,
                    etcdserverpb::MemberRemoveResponse* resp, Done done);
  void MemberUpdate(const etcdserverpb::MemberUpdateRequest& req,
                    etcdserverpb::MemberUpdateResponse* resp, Done done);
  void MemberPromote(const etcdserverpb::MemberPromoteRequest& req,
                     etcdserverpb::MemberPromoteResponse* resp, Done done);
  // Lease. KeepAlive is one renewal of a stream (the stream itself is the transport's); it
  // completes before it returns, blocking for a forwarded round trip on a follower.
  void LeaseGrant(const etcdserverpb::LeaseGrantRequest& req,
                  etcdserverpb::LeaseGrantResponse* resp, Done done);
  void LeaseRevoke(const etcdserverpb::LeaseRevokeRequest& req,
                   etcdserverpb::LeaseRevokeResponse* resp, Done done);
  void LeaseKeepAlive(const etcdserverpb::LeaseKeepAliveRequest& req,
                      etcdserverpb::LeaseKeepAliveResponse* resp, Done done);
  void LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req,
                       etcdserverpb::LeaseTimeToLiveResponse* resp, Done done);
  void LeaseLeases(const etcdserverpb::LeaseLeasesRequest& req,
                   etcdserverpb::LeaseLeasesResponse* resp, Done done);

 private:
  // Proposes `request`; once applied, `take(result)` fills the response (on success) and `done`
  // runs with the result's status.
  template <typename Take>
  void ProposeThen(cairnpb::InternalRequest request, Take take, Done done);
  template <typename Resp, typename Start>
  void MemberCall(Resp* resp, Start start, Done done);
  // Fills the response header: cluster, member, raft term and the store's current revision.
  void FillHeader(etcdserverpb::ResponseHeader* header);

  etcdserver::Server* server_;
  RequestGate* gate_;
};

}  // namespace cairn::api
