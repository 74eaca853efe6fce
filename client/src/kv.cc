#include "cairn/kv.h"

#include "client/src/convert.h"
#include "client/src/core.h"

namespace cairn {

using internal::Core;
using internal::RpcClass;
using internal::StartUnary;

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c < 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  // Every byte was 0xff (or the prefix was empty): the range has no upper bound.
  return std::string(1, '\0');
}

Op Op::Get(std::string key, GetOptions o) {
  Op op;
  op.type = Type::kGet;
  op.key = std::move(key);
  op.get = std::move(o);
  return op;
}

Op Op::Put(std::string key, std::string value, PutOptions o) {
  Op op;
  op.type = Type::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.put = o;
  return op;
}

Op Op::Delete(std::string key, DeleteOptions o) {
  Op op;
  op.type = Type::kDelete;
  op.key = std::move(key);
  op.del = std::move(o);
  return op;
}

Op Op::Nested(Txn txn) {
  Op op;
  op.type = Type::kTxn;
  op.txn = std::make_shared<const Txn>(std::move(txn));
  return op;
}

Txn& Txn::If(std::vector<Compare> compares) {
  for (auto& c : compares) compares_.push_back(std::move(c));
  return *this;
}

Txn& Txn::Then(std::vector<Op> ops) {
  for (auto& o : ops) success_.push_back(std::move(o));
  return *this;
}

Txn& Txn::Else(std::vector<Op> ops) {
  for (auto& o : ops) failure_.push_back(std::move(o));
  return *this;
}

namespace internal {

std::string RangeEndFor(const Core& core, const std::string& key, const RangeSpec& spec) {
  std::string end;
  if (spec.prefix) {
    end = PrefixEnd(key);
  } else if (spec.from_key) {
    end = std::string(1, '\0');
  } else {
    end = spec.range_end;
  }
  return core.AddPrefixEnd(end);
}

absl::Status CheckKey(const std::string& key, const RangeSpec& spec) {
  if (key.empty() && !spec.prefix && !spec.from_key && spec.range_end.empty()) {
    return absl::InvalidArgumentError("etcdserver: key is not provided");
  }
  return absl::OkStatus();
}

void ToKeyValue(const Core& core, const mvccpb::KeyValue& from, KeyValue* to) {
  to->key = core.StripPrefix(from.key());
  to->value = from.value();
  to->create_revision = from.create_revision();
  to->mod_revision = from.mod_revision();
  to->version = from.version();
  to->lease = from.lease();
}

etcdserverpb::RangeRequest ToRange(const Core& core, const std::string& key, const GetOptions& o) {
  etcdserverpb::RangeRequest r;
  r.set_key(core.AddPrefix(key));
  r.set_range_end(RangeEndFor(core, key, o));
  r.set_limit(o.limit);
  r.set_revision(o.revision);
  r.set_sort_order(static_cast<etcdserverpb::RangeRequest::SortOrder>(o.sort_order));
  r.set_sort_target(static_cast<etcdserverpb::RangeRequest::SortTarget>(o.sort_target));
  r.set_serializable(o.serializable);
  r.set_keys_only(o.keys_only);
  r.set_count_only(o.count_only);
  r.set_min_mod_revision(o.min_mod_revision);
  r.set_max_mod_revision(o.max_mod_revision);
  r.set_min_create_revision(o.min_create_revision);
  r.set_max_create_revision(o.max_create_revision);
  return r;
}

etcdserverpb::PutRequest ToPut(const Core& core, const std::string& key, const std::string& value,
                               const PutOptions& o) {
  etcdserverpb::PutRequest r;
  r.set_key(core.AddPrefix(key));
  r.set_value(value);
  r.set_lease(o.lease);
  r.set_prev_kv(o.prev_kv);
  r.set_ignore_value(o.ignore_value);
  r.set_ignore_lease(o.ignore_lease);
  return r;
}

etcdserverpb::DeleteRangeRequest ToDelete(const Core& core, const std::string& key,
                                          const DeleteOptions& o) {
  etcdserverpb::DeleteRangeRequest r;
  r.set_key(core.AddPrefix(key));
  r.set_range_end(RangeEndFor(core, key, o));
  r.set_prev_kv(o.prev_kv);
  return r;
}

GetResponse FromRange(const Core& core, const etcdserverpb::RangeResponse& r) {
  GetResponse out;
  CopyHeader(r.header(), &out.header);
  out.kvs.resize(r.kvs_size());
  for (int i = 0; i < r.kvs_size(); ++i) ToKeyValue(core, r.kvs(i), &out.kvs[i]);
  out.more = r.more();
  out.count = r.count();
  return out;
}

PutResponse FromPut(const Core& core, const etcdserverpb::PutResponse& r) {
  PutResponse out;
  CopyHeader(r.header(), &out.header);
  out.has_prev_kv = r.has_prev_kv();
  if (r.has_prev_kv()) ToKeyValue(core, r.prev_kv(), &out.prev_kv);
  return out;
}

DeleteResponse FromDelete(const Core& core, const etcdserverpb::DeleteRangeResponse& r) {
  DeleteResponse out;
  CopyHeader(r.header(), &out.header);
  out.deleted = r.deleted();
  out.prev_kvs.resize(r.prev_kvs_size());
  for (int i = 0; i < r.prev_kvs_size(); ++i) ToKeyValue(core, r.prev_kvs(i), &out.prev_kvs[i]);
  return out;
}

etcdserverpb::TxnRequest ToTxn(const Core& core, const Txn& txn);

void ToRequestOp(const Core& core, const Op& op, etcdserverpb::RequestOp* out) {
  switch (op.type) {
    case Op::Type::kGet:
      *out->mutable_request_range() = ToRange(core, op.key, op.get);
      break;
    case Op::Type::kPut:
      *out->mutable_request_put() = ToPut(core, op.key, op.value, op.put);
      break;
    case Op::Type::kDelete:
      *out->mutable_request_delete_range() = ToDelete(core, op.key, op.del);
      break;
    case Op::Type::kTxn:
      *out->mutable_request_txn() = ToTxn(core, *op.txn);
      break;
  }
}

etcdserverpb::TxnRequest ToTxn(const Core& core, const Txn& txn) {
  etcdserverpb::TxnRequest r;
  for (const Compare& c : txn.compares()) {
    etcdserverpb::Compare* pc = r.add_compare();
    pc->set_result(static_cast<etcdserverpb::Compare::CompareResult>(c.result));
    pc->set_target(static_cast<etcdserverpb::Compare::CompareTarget>(c.target));
    pc->set_key(core.AddPrefix(c.key));
    pc->set_range_end(core.AddPrefixEnd(c.range_end));
    switch (c.target) {
      case CompareTarget::kVersion:
        pc->set_version(c.number);
        break;
      case CompareTarget::kCreate:
        pc->set_create_revision(c.number);
        break;
      case CompareTarget::kMod:
        pc->set_mod_revision(c.number);
        break;
      case CompareTarget::kValue:
        pc->set_value(c.value);
        break;
      case CompareTarget::kLease:
        pc->set_lease(c.number);
        break;
    }
  }
  for (const Op& op : txn.success()) ToRequestOp(core, op, r.add_success());
  for (const Op& op : txn.failure()) ToRequestOp(core, op, r.add_failure());
  return r;
}

TxnResponse FromTxn(const Core& core, const etcdserverpb::TxnResponse& r) {
  TxnResponse out;
  CopyHeader(r.header(), &out.header);
  out.succeeded = r.succeeded();
  for (const auto& op : r.responses()) {
    OpResponse o;
    switch (op.response_case()) {
      case etcdserverpb::ResponseOp::kResponseRange:
        o.type = Op::Type::kGet;
        o.get = FromRange(core, op.response_range());
        break;
      case etcdserverpb::ResponseOp::kResponsePut:
        o.type = Op::Type::kPut;
        o.put = FromPut(core, op.response_put());
        break;
      case etcdserverpb::ResponseOp::kResponseDeleteRange:
        o.type = Op::Type::kDelete;
        o.del = FromDelete(core, op.response_delete_range());
        break;
      case etcdserverpb::ResponseOp::kResponseTxn:
        o.type = Op::Type::kTxn;
        o.txn = std::make_shared<TxnResponse>(FromTxn(core, op.response_txn()));
        break;
      default:
        break;
    }
    out.responses.push_back(std::move(o));
  }
  return out;
}

bool TxnIsReadOnly(const Txn& txn) {
  for (const auto* branch : {&txn.success(), &txn.failure()}) {
    for (const Op& op : *branch) {
      if (op.type == Op::Type::kPut || op.type == Op::Type::kDelete) return false;
      if (op.type == Op::Type::kTxn && !TxnIsReadOnly(*op.txn)) return false;
    }
  }
  return true;
}

}  // namespace internal

using namespace internal;  // NOLINT: conversion helpers of this file

Future<GetResponse> Kv::GetAsync(const std::string& key, const GetOptions& opts,
                                 const CallOptions& call) const {
  if (auto st = CheckKey(key, opts); !st.ok()) return MakeReadyFuture<GetResponse>(st);
  auto core = core_;
  return StartUnary<etcdserverpb::RangeRequest, etcdserverpb::RangeResponse, GetResponse>(
      core_, RpcClass::kRead, call, ToRange(*core_, key, opts), CAIRN_RPC(kv, Range),
      [core](etcdserverpb::RangeResponse& r) -> absl::StatusOr<GetResponse> {
        return FromRange(*core, r);
      });
}

Future<PutResponse> Kv::PutAsync(const std::string& key, const std::string& value,
                                 const PutOptions& opts, const CallOptions& call) const {
  auto core = core_;
  return StartUnary<etcdserverpb::PutRequest, etcdserverpb::PutResponse, PutResponse>(
      core_, RpcClass::kWrite, call, ToPut(*core_, key, value, opts), CAIRN_RPC(kv, Put),
      [core](etcdserverpb::PutResponse& r) -> absl::StatusOr<PutResponse> {
        return FromPut(*core, r);
      });
}

Future<DeleteResponse> Kv::DeleteAsync(const std::string& key, const DeleteOptions& opts,
                                       const CallOptions& call) const {
  if (auto st = CheckKey(key, opts); !st.ok()) return MakeReadyFuture<DeleteResponse>(st);
  auto core = core_;
  return StartUnary<etcdserverpb::DeleteRangeRequest, etcdserverpb::DeleteRangeResponse,
                    DeleteResponse>(
      core_, RpcClass::kWrite, call, ToDelete(*core_, key, opts), CAIRN_RPC(kv, DeleteRange),
      [core](etcdserverpb::DeleteRangeResponse& r) -> absl::StatusOr<DeleteResponse> {
        return FromDelete(*core, r);
      });
}

Future<TxnResponse> Kv::CommitAsync(const Txn& txn, const CallOptions& call) const {
  auto core = core_;
  // A transaction without puts or deletes is a read and is retried like one.
  RpcClass cls = TxnIsReadOnly(txn) ? RpcClass::kRead : RpcClass::kWrite;
  return StartUnary<etcdserverpb::TxnRequest, etcdserverpb::TxnResponse, TxnResponse>(
      core_, cls, call, ToTxn(*core_, txn), CAIRN_RPC(kv, Txn),
      [core](etcdserverpb::TxnResponse& r) -> absl::StatusOr<TxnResponse> {
        return FromTxn(*core, r);
      });
}

Future<CompactResponse> Kv::CompactAsync(Revision revision, bool physical,
                                         const CallOptions& call) const {
  etcdserverpb::CompactionRequest req;
  req.set_revision(revision);
  req.set_physical(physical);
  // Compaction is idempotent (compacting twice at the same revision is harmless, the second
  // attempt reports "compacted"), but etcd's client treats it as a write; so do we.
  return StartUnary<etcdserverpb::CompactionRequest, etcdserverpb::CompactionResponse,
                    CompactResponse>(
      core_, RpcClass::kWrite, call, std::move(req), CAIRN_RPC(kv, Compact),
      [](etcdserverpb::CompactionResponse& r) -> absl::StatusOr<CompactResponse> {
        CompactResponse out;
        CopyHeader(r.header(), &out.header);
        return out;
      });
}

}  // namespace cairn
