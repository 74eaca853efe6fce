#include "tests/history/model.h"

namespace cairn::history {
namespace {

bool CompareHolds(const State& state, const Compare& cmp) {
  auto it = state.find(cmp.key);
  // etcd: a VALUE compare on a missing key is false; the other targets read zeros.
  if (it == state.end() && cmp.target == Compare::Target::kValue) return false;
  const KeyValue empty;
  const KeyValue& kv = it == state.end() ? empty : it->second;
  int order = 0;
  if (cmp.target == Compare::Target::kValue) {
    order = kv.value.compare(cmp.value);
  } else {
    int64_t actual = cmp.target == Compare::Target::kVersion  ? kv.version
                     : cmp.target == Compare::Target::kCreate ? kv.create_revision
                                                              : kv.mod_revision;
    order = actual < cmp.number ? -1 : (actual > cmp.number ? 1 : 0);
  }
  switch (cmp.result) {
    case Compare::Result::kEqual:
      return order == 0;
    case Compare::Result::kNotEqual:
      return order != 0;
    case Compare::Result::kLess:
      return order < 0;
    case Compare::Result::kGreater:
      return order > 0;
  }
  return false;
}

OpResponse RangeOf(const State& state, const Op& op) {
  OpResponse out;
  for (const auto& [key, kv] : state) {
    if (!InRange(key, op.key, op.range_end)) continue;
    ++out.count;
    if (op.limit == 0 || static_cast<int64_t>(out.kvs.size()) < op.limit) out.kvs.push_back(kv);
  }
  return out;
}

}  // namespace

Applied ApplyRequest(const State& state, const Request& request, int64_t revision,
                     const StateAt& state_at) {
  Applied out;
  out.state = state;
  for (const Compare& cmp : request.compares) {
    if (!CompareHolds(state, cmp)) out.succeeded = false;
  }
  const std::vector<Op>& branch = out.succeeded ? request.success : request.failure;
  for (const Op& op : branch) {
    OpResponse response;
    switch (op.type) {
      case Op::Type::kRange: {
        if (op.revision > 0) {
          const State* past = state_at(op.revision);
          if (past != nullptr) response = RangeOf(*past, op);
        } else {
          response = RangeOf(out.state, op);
        }
        break;
      }
      case Op::Type::kPut: {
        KeyValue& kv = out.state[op.key];
        if (kv.version == 0) {
          kv.key = op.key;
          kv.create_revision = revision;
        }
        kv.value = op.value;
        kv.mod_revision = revision;
        ++kv.version;
        out.events.push_back({.type = Event::Type::kPut, .kv = kv});
        out.mutated = true;
        break;
      }
      case Op::Type::kDeleteRange: {
        for (auto it = out.state.begin(); it != out.state.end();) {
          if (InRange(it->first, op.key, op.range_end)) {
            Event event;
            event.type = Event::Type::kDelete;
            event.kv.key = it->first;
            event.kv.mod_revision = revision;
            out.events.push_back(std::move(event));
            ++response.deleted;
            it = out.state.erase(it);
          } else {
            ++it;
          }
        }
        if (response.deleted > 0) out.mutated = true;
        break;
      }
    }
    out.responses.push_back(std::move(response));
  }
  if (!out.mutated) out.state = state;
  return out;
}

bool SameResponse(const OpResponse& a, const OpResponse& b) {
  return a.kvs == b.kvs && a.count == b.count && a.deleted == b.deleted;
}

}  // namespace cairn::history
