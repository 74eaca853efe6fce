#include "tests/reliability/grpc_ops.h"

#include <chrono>

namespace cairn::reliability {
namespace {

history::KeyValue ToHistory(const mvccpb::KeyValue& kv) {
  history::KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  return out;
}

history::OpResponse FromRange(const etcdserverpb::RangeResponse& r) {
  history::OpResponse out;
  for (const auto& kv : r.kvs()) out.kvs.push_back(ToHistory(kv));
  out.count = r.count();
  return out;
}

etcdserverpb::RangeRequest ToRange(const history::Op& op) {
  etcdserverpb::RangeRequest req;
  req.set_key(op.key);
  req.set_range_end(op.range_end);
  req.set_revision(op.revision);
  req.set_limit(op.limit);
  return req;
}

etcdserverpb::PutRequest ToPut(const history::Op& op) {
  etcdserverpb::PutRequest req;
  req.set_key(op.key);
  req.set_value(op.value);
  return req;
}

etcdserverpb::DeleteRangeRequest ToDelete(const history::Op& op) {
  etcdserverpb::DeleteRangeRequest req;
  req.set_key(op.key);
  req.set_range_end(op.range_end);
  return req;
}

void ToRequestOps(const std::vector<history::Op>& ops,
                  google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>* out) {
  for (const history::Op& op : ops) {
    etcdserverpb::RequestOp* r = out->Add();
    switch (op.type) {
      case history::Op::Type::kRange:
        *r->mutable_request_range() = ToRange(op);
        break;
      case history::Op::Type::kPut:
        *r->mutable_request_put() = ToPut(op);
        break;
      case history::Op::Type::kDeleteRange:
        *r->mutable_request_delete_range() = ToDelete(op);
        break;
    }
  }
}

etcdserverpb::Compare ToCompare(const history::Compare& c) {
  etcdserverpb::Compare out;
  out.set_key(c.key);
  switch (c.result) {
    case history::Compare::Result::kEqual:
      out.set_result(etcdserverpb::Compare::EQUAL);
      break;
    case history::Compare::Result::kNotEqual:
      out.set_result(etcdserverpb::Compare::NOT_EQUAL);
      break;
    case history::Compare::Result::kLess:
      out.set_result(etcdserverpb::Compare::LESS);
      break;
    case history::Compare::Result::kGreater:
      out.set_result(etcdserverpb::Compare::GREATER);
      break;
  }
  switch (c.target) {
    case history::Compare::Target::kValue:
      out.set_target(etcdserverpb::Compare::VALUE);
      out.set_value(c.value);
      break;
    case history::Compare::Target::kVersion:
      out.set_target(etcdserverpb::Compare::VERSION);
      out.set_version(c.number);
      break;
    case history::Compare::Target::kCreate:
      out.set_target(etcdserverpb::Compare::CREATE);
      out.set_create_revision(c.number);
      break;
    case history::Compare::Target::kMod:
      out.set_target(etcdserverpb::Compare::MOD);
      out.set_mod_revision(c.number);
      break;
  }
  return out;
}

}  // namespace

grpc::Status Execute(etcdserverpb::KV::Stub& stub, const history::Request& request, int timeout_ms,
                     history::Response* response) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  *response = history::Response{};
  if (!request.is_txn) {
    const history::Op& op = request.success.at(0);
    grpc::Status status;
    switch (op.type) {
      case history::Op::Type::kRange: {
        etcdserverpb::RangeResponse r;
        status = stub.Range(&ctx, ToRange(op), &r);
        response->revision = r.header().revision();
        response->responses.push_back(FromRange(r));
        break;
      }
      case history::Op::Type::kPut: {
        etcdserverpb::PutResponse r;
        status = stub.Put(&ctx, ToPut(op), &r);
        response->revision = r.header().revision();
        response->responses.emplace_back();
        break;
      }
      case history::Op::Type::kDeleteRange: {
        etcdserverpb::DeleteRangeResponse r;
        status = stub.DeleteRange(&ctx, ToDelete(op), &r);
        response->revision = r.header().revision();
        response->responses.emplace_back();
        response->responses.back().deleted = r.deleted();
        break;
      }
    }
    return status;
  }
  etcdserverpb::TxnRequest req;
  for (const auto& c : request.compares) *req.add_compare() = ToCompare(c);
  ToRequestOps(request.success, req.mutable_success());
  ToRequestOps(request.failure, req.mutable_failure());
  etcdserverpb::TxnResponse r;
  grpc::Status status = stub.Txn(&ctx, req, &r);
  response->revision = r.header().revision();
  response->succeeded = r.succeeded();
  for (const auto& op : r.responses()) {
    history::OpResponse out;
    if (op.has_response_range()) out = FromRange(op.response_range());
    if (op.has_response_delete_range()) out.deleted = op.response_delete_range().deleted();
    response->responses.push_back(std::move(out));
  }
  return status;
}

history::WatchResponse ToHistory(const etcdserverpb::WatchResponse& response) {
  history::WatchResponse out;
  out.revision = response.header().revision();
  out.created = response.created();
  out.canceled = response.canceled();
  out.compact_revision = response.compact_revision();
  for (const auto& e : response.events()) {
    history::Event event;
    event.type = e.type() == mvccpb::Event::DELETE ? history::Event::Type::kDelete
                                                   : history::Event::Type::kPut;
    event.kv = ToHistory(e.kv());
    out.events.push_back(std::move(event));
  }
  return out;
}

}  // namespace cairn::reliability
