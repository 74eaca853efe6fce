#include "server/api/services.h"

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
  // Single member: the published view holds every acknowledged write, so reading it is both
  // linearizable and serializable.
  mvcc::KvStore* kv = server_->kv();
  auto result = kv->Range(kv->View(), *req);
  if (!result.ok()) return FinishNow(ctx, result.status());
  *resp = std::move(*result);
  server_->FillHeader(resp->mutable_header());
  return FinishNow(ctx, absl::OkStatus());
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
    // As etcd: a read-only txn is served from the local view without going through the log.
    mvcc::KvStore* kv = server_->kv();
    auto result = kv->ReadTxn(kv->View(), *req);
    if (!result.ok()) return FinishNow(ctx, result.status());
    *resp = std::move(*result);
    server_->FillHeader(resp->mutable_header());
    return FinishNow(ctx, absl::OkStatus());
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
  resp->set_leader(server_->member_id());
  resp->set_raftterm(server_->term());
  resp->set_raftindex(server_->kv()->applied_index());
  resp->set_raftappliedindex(server_->kv()->applied_index());
  resp->set_islearner(false);
  return FinishNow(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* ctx,
                                                     const etcdserverpb::MemberListRequest*,
                                                     etcdserverpb::MemberListResponse* resp) {
  resp->mutable_header()->set_revision(server_->kv()->View().revision);
  server_->FillHeader(resp->mutable_header());
  auto* m = resp->add_members();
  const auto& cfg = server_->config();
  m->set_id(server_->member_id());
  m->set_name(cfg.name);
  for (const auto& u : cfg.initial_advertise_peer_urls) m->add_peerurls(u);
  for (const auto& u : cfg.advertise_client_urls) m->add_clienturls(u);
  return FinishNow(ctx, absl::OkStatus());
}

}  // namespace cairn::api
