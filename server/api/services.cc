#include "server/api/services.h"

#include <type_traits>

#include "server/api/reactors.h"
#include "server/api/status.h"
#include "server/api/validate.h"

namespace cairn::api {

using etcdserverpb::ResponseHeader;

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  absl::string_view m = status.message();
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(m.data(), m.size()));
}

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* ctx,
                                           const etcdserverpb::RangeRequest* req,
                                           etcdserverpb::RangeResponse* resp) {
  absl::Status st = ValidateRange(*req);
  if (!st.ok()) return FinishNow(ctx, st);
  etcdserver::Server* server = server_;
  auto read = [server, req, resp]() -> absl::Status {
    mvcc::KvStore* kv = server->kv();
    auto result = kv->Range(kv->View(), *req);
    if (!result.ok()) return result.status();
    *resp = std::move(*result);
    server->FillHeader(resp->mutable_header());
    return absl::OkStatus();
  };
  // Serializable: the local view at once. Linearizable: after a ReadIndex barrier (the member
  // has applied everything committed before the call), then the local view.
  if (req->serializable()) return FinishNow(ctx, read());
  auto* reactor = ctx->DefaultReactor();
  server_->ReadBarrier([reactor, read](absl::Status barrier) {
    reactor->Finish(ToGrpc(barrier.ok() ? read() : barrier));
  });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::PutRequest* req,
                                         etcdserverpb::PutResponse* resp) {
  absl::Status st = ValidatePut(*req);
  if (!st.ok()) return FinishNow(ctx, st);
  cairnpb::InternalRequest ir;
  *ir.mutable_put() = *req;
  etcdserver::Server* server = server_;
  return ProposeAndFinish(ctx, server_, std::move(ir), [resp, server](mvcc::ApplyResult& r) {
    *resp = std::move(r.put);
    server->FillHeader(resp->mutable_header());
  });
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* ctx,
                                                 const etcdserverpb::DeleteRangeRequest* req,
                                                 etcdserverpb::DeleteRangeResponse* resp) {
  absl::Status st = ValidateDeleteRange(*req);
  if (!st.ok()) return FinishNow(ctx, st);
  cairnpb::InternalRequest ir;
  *ir.mutable_delete_range() = *req;
  etcdserver::Server* server = server_;
  return ProposeAndFinish(ctx, server_, std::move(ir), [resp, server](mvcc::ApplyResult& r) {
    *resp = std::move(r.delete_range);
    server->FillHeader(resp->mutable_header());
  });
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::TxnRequest* req,
                                         etcdserverpb::TxnResponse* resp) {
  absl::Status st = ValidateTxn(*req, server_->config().max_txn_ops);
  if (!st.ok()) return FinishNow(ctx, st);
  if (mvcc::IsTxnReadOnly(*req)) {
    // As etcd: a read-only txn is served from the local view without going through the log,
    // after a ReadIndex barrier (etcd's read-only txns are linearizable).
    etcdserver::Server* server = server_;
    auto* reactor = ctx->DefaultReactor();
    server_->ReadBarrier([reactor, server, req, resp](absl::Status barrier) {
      if (!barrier.ok()) {
        reactor->Finish(ToGrpc(barrier));
        return;
      }
      mvcc::KvStore* kv = server->kv();
      auto result = kv->ReadTxn(kv->View(), *req);
      if (!result.ok()) {
        reactor->Finish(ToGrpc(result.status()));
        return;
      }
      *resp = std::move(*result);
      server->FillHeader(resp->mutable_header());
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }
  cairnpb::InternalRequest ir;
  *ir.mutable_txn() = *req;
  etcdserver::Server* server = server_;
  return ProposeAndFinish(ctx, server_, std::move(ir), [resp, server](mvcc::ApplyResult& r) {
    *resp = std::move(r.txn);
    server->FillHeader(resp->mutable_header());
  });
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* ctx,
                                             const etcdserverpb::CompactionRequest* req,
                                             etcdserverpb::CompactionResponse* resp) {
  cairnpb::InternalRequest ir;
  *ir.mutable_compaction() = *req;
  auto* reactor = ctx->DefaultReactor();
  etcdserver::Server* server = server_;
  bool physical = req->physical();
  server_->Propose(std::move(ir), [reactor, resp, server, physical](mvcc::ApplyResult r) {
    if (!r.status.ok()) {
      reactor->Finish(ToGrpc(r.status));
      return;
    }
    auto finish = [reactor, resp, server](bool) {
      // etcd answers with the store's revision at reply time.
      resp->mutable_header()->set_revision(server->kv()->View().revision);
      server->FillHeader(resp->mutable_header());
      reactor->Finish(grpc::Status::OK);
    };
    if (physical) {
      server->kv()->OnCompacted(r.compact_revision, finish);
    } else {
      finish(true);
    }
  });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::StatusRequest*,
                                                     etcdserverpb::StatusResponse* resp) {
  mvcc::ReadView view = server_->kv()->View();
  resp->mutable_header()->set_revision(view.revision);
  server_->FillHeader(resp->mutable_header());
  resp->set_version(kEtcdApiVersion);
  int64_t size = server_->backend()->SizeBytes();
  resp->set_dbsize(size);
  resp->set_dbsizeinuse(size);
  resp->set_leader(server_->leader());
  resp->set_raftterm(server_->term());
  resp->set_raftindex(server_->raft_index());
  resp->set_raftappliedindex(server_->applied_index());
  resp->set_islearner(server_->is_learner());
  return FinishNow(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(grpc::CallbackServerContext* ctx,
                                                         const etcdserverpb::MoveLeaderRequest* req,
                                                         etcdserverpb::MoveLeaderResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  etcdserver::Server* server = server_;
  server_->MoveLeader(req->targetid(), [reactor, resp, server](absl::Status st) {
    if (st.ok()) {
      resp->mutable_header()->set_revision(server->kv()->View().revision);
      server->FillHeader(resp->mutable_header());
    }
    reactor->Finish(ToGrpc(st));
  });
  return reactor;
}

namespace {

void ToEtcdMember(const cairnpb::Member& in, etcdserverpb::Member* out) {
  out->set_id(in.id());
  out->set_name(in.name());
  for (const auto& u : in.peer_urls()) out->add_peerurls(u);
  for (const auto& u : in.client_urls()) out->add_clienturls(u);
  out->set_islearner(in.is_learner());
}

template <typename Resp>
void FillMembers(etcdserver::Server* server, Resp* resp) {
  resp->mutable_header()->set_revision(server->kv()->View().revision);
  server->FillHeader(resp->mutable_header());
  for (const auto& m : server->Members()) ToEtcdMember(m, resp->add_members());
}

// Runs a membership change and answers with the member list as of its application.
template <typename Resp, typename Start>
grpc::ServerUnaryReactor* MemberCall(grpc::CallbackServerContext* ctx, etcdserver::Server* server,
                                     Resp* resp, Start start) {
  auto* reactor = ctx->DefaultReactor();
  // On the member's admin thread: the change may wait for the leader's view or forward to it.
  server->RunAdmin([reactor, server, resp, start = std::move(start)] {
    start([reactor, server, resp](absl::StatusOr<cairnpb::Member> m) {
      if (!m.ok()) {
        reactor->Finish(ToGrpc(m.status()));
        return;
      }
      if constexpr (std::is_same_v<Resp, etcdserverpb::MemberAddResponse>) {
        ToEtcdMember(*m, resp->mutable_member());
      }
      FillMembers(server, resp);
      reactor->Finish(grpc::Status::OK);
    });
  });
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::MemberListRequest*,
                                                     etcdserverpb::MemberListResponse* resp) {
  FillMembers(server_, resp);
  return FinishNow(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ClusterService::MemberAdd(grpc::CallbackServerContext* ctx,
                                                    const etcdserverpb::MemberAddRequest* req,
                                                    etcdserverpb::MemberAddResponse* resp) {
  std::vector<std::string> urls(req->peerurls().begin(), req->peerurls().end());
  bool learner = req->islearner();
  etcdserver::Server* server = server_;
  return MemberCall(ctx, server_, resp, [server, urls, learner](auto done) {
    server->AddMember(urls, learner, std::move(done));
  });
}

grpc::ServerUnaryReactor* ClusterService::MemberRemove(grpc::CallbackServerContext* ctx,
                                                       const etcdserverpb::MemberRemoveRequest* req,
                                                       etcdserverpb::MemberRemoveResponse* resp) {
  uint64_t id = req->id();
  etcdserver::Server* server = server_;
  return MemberCall(ctx, server_, resp,
                    [server, id](auto done) { server->RemoveMember(id, std::move(done)); });
}

grpc::ServerUnaryReactor* ClusterService::MemberUpdate(grpc::CallbackServerContext* ctx,
                                                       const etcdserverpb::MemberUpdateRequest* req,
                                                       etcdserverpb::MemberUpdateResponse* resp) {
  uint64_t id = req->id();
  std::vector<std::string> urls(req->peerurls().begin(), req->peerurls().end());
  etcdserver::Server* server = server_;
  return MemberCall(ctx, server_, resp, [server, id, urls](auto done) {
    server->UpdateMember(id, urls, std::move(done));
  });
}

grpc::ServerUnaryReactor* ClusterService::MemberPromote(
    grpc::CallbackServerContext* ctx, const etcdserverpb::MemberPromoteRequest* req,
    etcdserverpb::MemberPromoteResponse* resp) {
  uint64_t id = req->id();
  etcdserver::Server* server = server_;
  return MemberCall(ctx, server_, resp,
                    [server, id](auto done) { server->PromoteMember(id, std::move(done)); });
}

}  // namespace cairn::api
