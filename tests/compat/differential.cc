#include "tests/compat/differential.h"

#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "tests/harness/server_process.h"

namespace cairn::testing::compat {
namespace {

using etcdserverpb::CompactionRequest;
using etcdserverpb::Compare;
using etcdserverpb::DeleteRangeRequest;
using etcdserverpb::LeaseGrantRequest;
using etcdserverpb::LeaseRevokeRequest;
using etcdserverpb::PutRequest;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr int kRpcDeadlineMs = 20000;
constexpr size_t kDescribeMax = 400;

std::string Abbreviate(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t total = s.size();
  s.resize(max);
  return absl::StrCat(s, "...(", total, " bytes)");
}

// Clears the ids that differ between servers in every ResponseHeader inside `m`. A header left
// empty by that is removed: a header carrying only ids is the same answer as no header.
void NormalizeHeaders(Message* m) {
  const Reflection* reflection = m->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(*m, &fields);
  for (const FieldDescriptor* field : fields) {
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(*m, field); ++i) {
        NormalizeHeaders(reflection->MutableRepeatedMessage(m, field, i));
      }
      continue;
    }
    Message* sub = reflection->MutableMessage(m, field);
    if (field->message_type() == etcdserverpb::ResponseHeader::descriptor()) {
      auto* header = static_cast<etcdserverpb::ResponseHeader*>(sub);
      header->clear_cluster_id();
      header->clear_member_id();
      header->clear_raft_term();
      if (header->ByteSizeLong() == 0) reflection->ClearField(m, field);
    } else {
      NormalizeHeaders(sub);
    }
  }
}

std::string Answer(const grpc::Status& status, Message* response) {
  if (!status.ok()) {
    return absl::StrCat("ERR ", static_cast<int>(status.error_code()), ": ",
                        status.error_message());
  }
  NormalizeHeaders(response);
  return absl::StrCat("OK ", response->ShortDebugString());
}

struct Stubs {
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
};

template <typename Call, typename Response>
std::string Invoke(Call call, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(kRpcDeadlineMs));
  grpc::Status status = call(&context, response);
  return Answer(status, response);
}

std::string Execute(Stubs& stubs, const Op& op) {
  struct Visitor {
    Stubs& s;
    std::string operator()(const RangeRequest& r) {
      etcdserverpb::RangeResponse resp;
      return Invoke([&](grpc::ClientContext* c, auto* o) { return s.kv->Range(c, r, o); }, &resp);
    }
    std::string operator()(const PutRequest& r) {
      etcdserverpb::PutResponse resp;
      return Invoke([&](grpc::ClientContext* c, auto* o) { return s.kv->Put(c, r, o); }, &resp);
    }
    std::string operator()(const DeleteRangeRequest& r) {
      etcdserverpb::DeleteRangeResponse resp;
      return Invoke([&](grpc::ClientContext* c, auto* o) { return s.kv->DeleteRange(c, r, o); },
                    &resp);
    }
    std::string operator()(const TxnRequest& r) {
      etcdserverpb::TxnResponse resp;
      return Invoke([&](grpc::ClientContext* c, auto* o) { return s.kv->Txn(c, r, o); }, &resp);
    }
    std::string operator()(const CompactionRequest& r) {
      etcdserverpb::CompactionResponse resp;
      return Invoke([&](grpc::ClientContext* c, auto* o) { return s.kv->Compact(c, r, o); }, &resp);
    }
    std::string operator()(const LeaseGrantRequest& r) {
      etcdserverpb::LeaseGrantResponse resp;
      return Invoke([&](grpc::ClientContext* c, auto* o) { return s.lease->LeaseGrant(c, r, o); },
                    &resp);
    }
    std::string operator()(const LeaseRevokeRequest& r) {
      etcdserverpb::LeaseRevokeResponse resp;
      return Invoke([&](grpc::ClientContext* c, auto* o) { return s.lease->LeaseRevoke(c, r, o); },
                    &resp);
    }
  };
  return std::visit(Visitor{stubs}, op);
}

// ---- builders ------------------------------------------------------------------------------

RequestOp ReqPut(const std::string& key, const std::string& value, bool prev_kv = false) {
  RequestOp op;
  PutRequest* p = op.mutable_request_put();
  p->set_key(key);
  p->set_value(value);
  p->set_prev_kv(prev_kv);
  return op;
}

RequestOp ReqRange(const std::string& key, const std::string& range_end = "") {
  RequestOp op;
  op.mutable_request_range()->set_key(key);
  op.mutable_request_range()->set_range_end(range_end);
  return op;
}

RequestOp ReqDelete(const std::string& key, const std::string& range_end = "",
                    bool prev_kv = false) {
  RequestOp op;
  DeleteRangeRequest* d = op.mutable_request_delete_range();
  d->set_key(key);
  d->set_range_end(range_end);
  d->set_prev_kv(prev_kv);
  return op;
}

RequestOp ReqTxn(const TxnRequest& txn) {
  RequestOp op;
  *op.mutable_request_txn() = txn;
  return op;
}

Compare Cmp(const std::string& key, Compare::CompareTarget target, Compare::CompareResult result,
            int64_t number, const std::string& value = "", const std::string& range_end = "") {
  Compare c;
  c.set_key(key);
  c.set_target(target);
  c.set_result(result);
  c.set_range_end(range_end);
  switch (target) {
    case Compare::VERSION:
      c.set_version(number);
      break;
    case Compare::CREATE:
      c.set_create_revision(number);
      break;
    case Compare::MOD:
      c.set_mod_revision(number);
      break;
    case Compare::VALUE:
      c.set_value(value);
      break;
    case Compare::LEASE:
      c.set_lease(number);
      break;
    default:
      break;
  }
  return c;
}

TxnRequest Txn(std::vector<Compare> compares, std::vector<RequestOp> success,
               std::vector<RequestOp> failure = {}) {
  TxnRequest t;
  for (auto& c : compares) *t.add_compare() = c;
  for (auto& o : success) *t.add_success() = o;
  for (auto& o : failure) *t.add_failure() = o;
  return t;
}

Op RangeOp(const std::string& key, const std::string& range_end, void (*tweak)(RangeRequest*)) {
  RangeRequest r;
  r.set_key(key);
  r.set_range_end(range_end);
  if (tweak != nullptr) tweak(&r);
  return r;
}

// Small deterministic PRNG (splitmix64), so sequences do not depend on the standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  int64_t Below(int64_t n) { return n <= 0 ? 0 : static_cast<int64_t>(Next() % uint64_t(n)); }
  // Uniform in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi) { return lo + Below(hi - lo + 1); }
  bool Chance(int percent) { return Below(100) < percent; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Below(static_cast<int64_t>(v.size())))];
  }

 private:
  uint64_t state_;
};

// The random key space: ten keys, under the twelve up to which Go's sort.Sort (used by etcd for
// sorted Range) is an insertion sort, i.e. stable, so ties have one defined order.
const std::vector<std::string>& RandomKeys() {
  static const auto* keys =
      new std::vector<std::string>{"a", "b", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};
  return *keys;
}

class Generator {
 public:
  Generator(uint64_t seed, bool leases) : rng_(seed), leases_(leases) {}

  std::vector<Op> Sequence(int count) {
    std::vector<Op> ops;
    if (leases_) {
      for (int64_t id : kLeaseIds) ops.push_back(MakeLeaseGrant(id));
    }
    while (static_cast<int>(ops.size()) < count) ops.push_back(One());
    return ops;
  }

 private:
  // An estimate of the store's revision so far: about 60% of the top-level ops that may write do
  // (the rest fail, delete nothing or take a read-only branch); calibrated on etcd's answers.
  int64_t RevisionBound() const { return writes_ * 3 / 5 + 2; }

  std::string Key() { return rng_.Pick(RandomKeys()); }

  std::string Value() {
    if (rng_.Chance(5)) return "";
    return absl::StrCat("v", rng_.Below(8));
  }

  int64_t Lease() {
    if (!leases_) return 0;
    int64_t r = rng_.Below(100);
    if (r < 60) return 0;
    if (r < 97) return kLeaseIds[rng_.Below(3)];
    return kMissingLeaseId;
  }

  // A range end for `key`: single key, prefix, from-key, to another key (maybe below key).
  std::string RangeEnd(const std::string& key) {
    int64_t r = rng_.Below(100);
    if (r < 45) return "";
    if (r < 65) return PrefixEnd(key.substr(0, 1));
    if (r < 80) return std::string(1, '\0');
    return Key();
  }

  std::string RangeStart() {
    int64_t r = rng_.Below(100);
    if (r < 5) return std::string(1, '\0');
    if (r < 12) return "k";
    return Key();
  }

  // `ignore_flags`: may set ignore_value/ignore_lease. Not inside transactions: a txn that deletes
  // [k, "\0") and then puts k with an ignore flag passes etcd 3.4's duplicate-key check (it takes
  // "\0" literally) and panics etcd when applied, on every restart too.
  PutRequest Put(bool ignore_flags) {
    PutRequest p;
    p.set_key(Key());
    p.set_value(Value());
    p.set_lease(Lease());
    p.set_prev_kv(rng_.Chance(30));
    if (ignore_flags && rng_.Chance(4)) {
      p.set_ignore_value(true);
      if (!rng_.Chance(20)) p.clear_value();
    }
    if (ignore_flags && rng_.Chance(4)) {
      p.set_ignore_lease(true);
      if (!rng_.Chance(20)) p.clear_lease();
    }
    return p;
  }

  DeleteRangeRequest Delete() {
    DeleteRangeRequest d;
    d.set_key(RangeStart());
    d.set_range_end(RangeEnd(d.key()));
    d.set_prev_kv(rng_.Chance(40));
    return d;
  }

  int64_t SomeRevision() { return rng_.Between(1, RevisionBound() + 2); }

  RangeRequest Range(bool allow_revision) {
    RangeRequest r;
    r.set_key(RangeStart());
    r.set_range_end(RangeEnd(r.key()));
    if (rng_.Chance(30)) r.set_limit(rng_.Between(rng_.Chance(5) ? -1 : 1, 4));
    if (allow_revision && rng_.Chance(25)) r.set_revision(SomeRevision());
    if (rng_.Chance(30)) {
      r.set_sort_order(static_cast<RangeRequest::SortOrder>(rng_.Below(3)));
      r.set_sort_target(static_cast<RangeRequest::SortTarget>(rng_.Below(5)));
    }
    r.set_serializable(rng_.Chance(30));
    r.set_keys_only(rng_.Chance(15));
    r.set_count_only(rng_.Chance(10));
    if (rng_.Chance(10)) r.set_min_mod_revision(SomeRevision());
    if (rng_.Chance(10)) r.set_max_mod_revision(SomeRevision());
    if (rng_.Chance(10)) r.set_min_create_revision(SomeRevision());
    if (rng_.Chance(10)) r.set_max_create_revision(SomeRevision());
    return r;
  }

  Compare RandomCompare() {
    auto target = static_cast<Compare::CompareTarget>(rng_.Below(5));
    auto result = static_cast<Compare::CompareResult>(rng_.Below(4));
    std::string key = Key();
    std::string range_end;
    if (rng_.Chance(15)) range_end = rng_.Chance(50) ? PrefixEnd(key.substr(0, 1)) : Nul();
    int64_t number = 0;
    switch (target) {
      case Compare::VERSION:
        number = rng_.Below(4);
        break;
      case Compare::CREATE:
      case Compare::MOD:
        number = rng_.Below(RevisionBound() + 1);
        break;
      case Compare::LEASE:
        number = leases_ ? Lease() : kLeaseIds[0] * rng_.Below(2);
        break;
      default:
        break;
    }
    return Cmp(key, target, result, number, Value(), range_end);
  }

  static std::string Nul() { return std::string(1, '\0'); }

  RequestOp RandomRequestOp(int depth) {
    int64_t r = rng_.Below(100);
    RequestOp op;
    if (r < 45) {
      *op.mutable_request_put() = Put(/*ignore_flags=*/false);
    } else if (r < 60) {
      *op.mutable_request_delete_range() = Delete();
    } else if (r < 90 || depth >= 2) {
      // Historical reads inside a txn are legal too.
      *op.mutable_request_range() = Range(true);
    } else {
      *op.mutable_request_txn() = RandomTxn(depth + 1);
    }
    return op;
  }

  TxnRequest RandomTxn(int depth) {
    TxnRequest t;
    int compares = static_cast<int>(rng_.Below(4));
    for (int i = 0; i < compares; ++i) *t.add_compare() = RandomCompare();
    int success = static_cast<int>(rng_.Below(4));
    for (int i = 0; i < success; ++i) *t.add_success() = RandomRequestOp(depth);
    int failure = static_cast<int>(rng_.Below(3));
    for (int i = 0; i < failure; ++i) *t.add_failure() = RandomRequestOp(depth);
    return t;
  }

  Op One() {
    int64_t r = rng_.Below(1000);
    if (r >= 650 || r < 380) ++writes_;
    if (r < 300) return Put(/*ignore_flags=*/true);
    if (r < 380) return Delete();
    if (r < 650) return Range(true);
    if (r < 960) return RandomTxn(0);
    if (r < 975 || !leases_) {
      CompactionRequest c;
      c.set_revision(rng_.Between(std::max<int64_t>(1, RevisionBound() - 40), RevisionBound()));
      c.set_physical(rng_.Chance(50));
      return c;
    }
    if (r < 982) {
      return MakeLeaseRevoke(rng_.Chance(90) ? kLeaseIds[rng_.Below(3)] : kMissingLeaseId);
    }
    return MakeLeaseGrant(kLeaseIds[rng_.Below(3)]);
  }

  Rng rng_;
  bool leases_;
  int64_t writes_ = 0;
};

}  // namespace

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  // Every byte was 0xff: the prefix range has no end, i.e. "every key >= prefix".
  return std::string(1, '\0');
}

Op MakePut(const std::string& key, const std::string& value, int64_t lease, bool prev_kv) {
  PutRequest p;
  p.set_key(key);
  p.set_value(value);
  p.set_lease(lease);
  p.set_prev_kv(prev_kv);
  return p;
}

Op MakeRange(const std::string& key, const std::string& range_end, int64_t revision) {
  RangeRequest r;
  r.set_key(key);
  r.set_range_end(range_end);
  r.set_revision(revision);
  return r;
}

Op MakeDelete(const std::string& key, const std::string& range_end, bool prev_kv) {
  DeleteRangeRequest d;
  d.set_key(key);
  d.set_range_end(range_end);
  d.set_prev_kv(prev_kv);
  return d;
}

Op MakeCompact(int64_t revision, bool physical) {
  CompactionRequest c;
  c.set_revision(revision);
  c.set_physical(physical);
  return c;
}

Op MakeLeaseGrant(int64_t id, int64_t ttl_seconds) {
  LeaseGrantRequest g;
  g.set_id(id);
  g.set_ttl(ttl_seconds);
  return g;
}

Op MakeLeaseRevoke(int64_t id) {
  LeaseRevokeRequest r;
  r.set_id(id);
  return r;
}

std::string DescribeOp(const Op& op) {
  const Message& m = std::visit([](const auto& r) -> const Message& { return r; }, op);
  return Abbreviate(absl::StrCat(m.GetDescriptor()->name(), " ", m.ShortDebugString()),
                    kDescribeMax);
}

std::vector<std::string> RunSequence(const std::string& endpoint, const std::vector<Op>& ops) {
  auto channel = MakeTestChannel(endpoint);
  Stubs stubs{etcdserverpb::KV::NewStub(channel), etcdserverpb::Lease::NewStub(channel)};
  std::vector<std::string> transcript;
  transcript.reserve(ops.size());
  for (const Op& op : ops) transcript.push_back(Execute(stubs, op));
  return transcript;
}

int FirstDifference(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return static_cast<int>(i);
  }
  return a.size() == b.size() ? -1 : static_cast<int>(n);
}

std::string DifferenceReport(const std::vector<Op>& ops, const std::vector<std::string>& a,
                             const std::string& a_name, const std::vector<std::string>& b,
                             const std::string& b_name) {
  int i = FirstDifference(a, b);
  if (i < 0) return "";
  auto line = [](const std::vector<std::string>& t, int index) {
    return index < static_cast<int>(t.size()) ? Abbreviate(t[index], 4000)
                                              : std::string("<missing>");
  };
  std::string report =
      absl::StrCat("first difference at op #", i, " of ", ops.size(),
                   ":\n  op: ", i < static_cast<int>(ops.size()) ? DescribeOp(ops[i]) : "?", "\n  ",
                   a_name, ": ", line(a, i), "\n  ", b_name, ": ", line(b, i), "\n");
  int differing = 0;
  for (size_t j = 0; j < std::min(a.size(), b.size()); ++j) differing += a[j] != b[j];
  absl::StrAppend(&report, "  (", differing, " differing ops in total)\n");
  return report;
}

// ---- scripts ---------------------------------------------------------------------------------

std::vector<Op> ErrorScript() {
  std::vector<Op> ops;
  // Empty keys.
  ops.push_back(MakePut("", "v"));
  ops.push_back(MakeRange(""));
  ops.push_back(MakeDelete(""));
  ops.push_back(Txn({Cmp("", Compare::VERSION, Compare::EQUAL, 0)}, {}));
  ops.push_back(Txn({}, {ReqPut("", "v")}));
  ops.push_back(Txn({}, {ReqRange("")}));
  ops.push_back(Txn({}, {ReqDelete("")}));
  // An unknown sort order (etcd 3.4 does not validate it and does not sort). An unknown sort
  // target is left out: etcd 3.4.23 dereferences a nil sorter and crashes.
  ops.push_back(RangeOp("a", "", [](RangeRequest* r) {
    r->set_sort_order(static_cast<RangeRequest::SortOrder>(7));
  }));
  ops.push_back(MakePut("k1", "v1"));   // rev 2
  ops.push_back(MakePut("k2", "v2"));   // rev 3
  ops.push_back(MakePut("k1", "v1b"));  // rev 4
  // Future and compacted revisions.
  ops.push_back(MakeRange("k1", "", 5));
  ops.push_back(MakeRange("k1", "", 100));
  ops.push_back(MakeRange("k1", "", 4));
  ops.push_back(MakeCompact(5));
  ops.push_back(MakeCompact(100));
  ops.push_back(MakeCompact(3));
  ops.push_back(MakeRange("k1", "", 2));
  ops.push_back(MakeRange("k1", "", 3));
  ops.push_back(MakeRange("k1", "", 1));
  ops.push_back(MakeCompact(3));
  ops.push_back(MakeCompact(2));
  ops.push_back(MakeCompact(0));
  ops.push_back(MakeCompact(-1));
  ops.push_back(MakeCompact(4, true));
  ops.push_back(Txn({}, {ReqRange("k1")}));
  {
    TxnRequest t = Txn({}, {ReqRange("k1")});
    t.mutable_success(0)->mutable_request_range()->set_revision(2);
    ops.push_back(t);
    t.mutable_success(0)->mutable_request_range()->set_revision(50);
    ops.push_back(t);
  }
  ops.push_back(RangeOp("k", "l", [](RangeRequest* r) { r->set_revision(-5); }));
  // Duplicate keys in a txn.
  ops.push_back(Txn({}, {ReqPut("d", "1"), ReqPut("d", "2")}));
  ops.push_back(Txn({}, {ReqPut("d", "1")}, {ReqPut("d", "2")}));  // different branches: fine
  ops.push_back(Txn({}, {}, {ReqPut("e", "1"), ReqPut("e", "2")}));
  ops.push_back(Txn({}, {ReqPut("d", "1"), ReqDelete("c", "f")}));
  ops.push_back(Txn({}, {ReqDelete("c", "f"), ReqPut("d", "1")}));
  ops.push_back(Txn({}, {ReqDelete("c", "f"), ReqDelete("d")}));             // overlapping deletes
  ops.push_back(Txn({}, {ReqRange("d"), ReqPut("d", "1"), ReqRange("d")}));  // reads are fine
  ops.push_back(Txn({}, {ReqPut("d", "1"), ReqTxn(Txn({}, {ReqPut("d", "2")}))}));
  ops.push_back(Txn({}, {ReqTxn(Txn({}, {ReqPut("d", "2")})), ReqPut("d", "1")}));
  ops.push_back(Txn({}, {ReqTxn(Txn({}, {ReqPut("d", "2")}, {ReqPut("d", "3")}))}));
  ops.push_back(
      Txn({}, {ReqTxn(Txn({}, {ReqPut("d", "2")})), ReqTxn(Txn({}, {ReqPut("d", "3")}))}));
  ops.push_back(Txn({}, {ReqDelete("a", std::string(1, '\0')), ReqPut("zz", "1")}));
  // Too many operations: etcd's --max-txn-ops default is 128.
  for (int n : {128, 129}) {
    std::vector<RequestOp> puts;
    for (int i = 0; i < n; ++i) puts.push_back(ReqPut(absl::StrFormat("t%03d", i), "x"));
    ops.push_back(Txn({}, puts));
    ops.push_back(Txn({}, {}, puts));
  }
  {
    std::vector<RequestOp> ranges;
    for (int i = 0; i < 129; ++i) ranges.push_back(ReqRange("k1"));
    ops.push_back(Txn({}, ranges));
  }
  // Request too large: etcd's --max-request-bytes default is 1.5 MiB.
  ops.push_back(MakePut("big", std::string(1572864 + 1024, 'b')));
  ops.push_back(Txn({}, {ReqPut("big", std::string(1600000, 'b'))}));
  ops.push_back(MakePut("big", std::string(1400000, 'b')));
  ops.push_back(MakeRange("big", "", 0));
  ops.push_back(MakeDelete("big"));
  // ignore_value / ignore_lease.
  {
    PutRequest p;
    p.set_key("missing");
    p.set_ignore_value(true);
    ops.push_back(p);
    p.set_ignore_value(false);
    p.set_ignore_lease(true);
    p.set_value("v");
    ops.push_back(p);
    p.set_key("k1");
    p.set_ignore_lease(false);
    p.set_ignore_value(true);
    ops.push_back(p);  // value is provided
    p.clear_value();
    p.set_ignore_value(false);
    p.set_ignore_lease(true);
    p.set_lease(kMissingLeaseId);
    ops.push_back(p);  // lease is provided
    p.set_ignore_lease(false);
    ops.push_back(p);  // lease not found
    RequestOp in_txn;
    p.clear_lease();
    p.set_key("missing");
    p.set_ignore_value(true);
    *in_txn.mutable_request_put() = p;
    ops.push_back(Txn({}, {in_txn}));
    ops.push_back(Txn({}, {ReqPut("k2", "z"), in_txn}));
  }
  return ops;
}

std::vector<Op> LeaseScript() {
  std::vector<Op> ops;
  ops.push_back(MakePut("k1", "v1"));
  ops.push_back(MakeLeaseRevoke(kMissingLeaseId));
  ops.push_back(MakeLeaseGrant(101));
  ops.push_back(MakeLeaseGrant(101));
  ops.push_back(MakeLeaseGrant(102, 9000000001));  // too large TTL
  ops.push_back(MakeLeaseGrant(-5));
  ops.push_back(MakePut("k1", "lv", 101, true));
  ops.push_back(MakePut("k1", "lv", kMissingLeaseId));
  {
    RequestOp in_txn = ReqPut("k3", "x");
    in_txn.mutable_request_put()->set_lease(kMissingLeaseId);
    ops.push_back(Txn({}, {in_txn}));
    ops.push_back(Txn({Cmp("k1", Compare::VALUE, Compare::EQUAL, 0, "nope")}, {in_txn}));
  }
  {
    PutRequest keep;
    keep.set_key("k1");
    keep.set_ignore_value(true);
    keep.set_prev_kv(true);
    ops.push_back(keep);  // keeps the value, keeps lease? no: lease 0 detaches it
    keep.set_lease(101);
    ops.push_back(keep);
    keep.set_lease(0);
    keep.set_ignore_value(false);
    keep.set_ignore_lease(true);
    keep.set_value("nv");
    ops.push_back(keep);  // keeps lease 101
    keep.set_ignore_value(true);
    keep.clear_value();
    ops.push_back(keep);  // both ignored
  }
  ops.push_back(MakeRange("k1"));
  ops.push_back(MakeLeaseRevoke(101));
  ops.push_back(MakeRange("k", "l"));
  ops.push_back(MakeLeaseRevoke(101));
  ops.push_back(MakeLeaseRevoke(0));
  // Lease compares, on keys with, without and after losing a lease.
  ops.push_back(MakeLeaseGrant(102));
  ops.push_back(MakePut("a", "1", 102));
  ops.push_back(MakePut("b", "1"));
  for (int64_t lease : {0, 101, 102, 999}) {
    for (int result = 0; result < 4; ++result) {
      for (const char* key : {"a", "b", "missing"}) {
        ops.push_back(
            Txn({Cmp(key, Compare::LEASE, static_cast<Compare::CompareResult>(result), lease)},
                {ReqRange(key)}, {ReqRange("b")}));
      }
      ops.push_back(Txn(
          {Cmp("a", Compare::LEASE, static_cast<Compare::CompareResult>(result), lease, "", "c")},
          {ReqRange("a", "c")}));
    }
  }
  ops.push_back(MakeLeaseRevoke(102));
  ops.push_back(Txn({Cmp("a", Compare::LEASE, Compare::EQUAL, 0)}, {ReqRange("a")}));
  ops.push_back(Txn({Cmp("b", Compare::LEASE, Compare::EQUAL, 0)}, {ReqRange("b")}));
  // Revoking a lease deletes all its keys in one revision.
  ops.push_back(MakeLeaseGrant(103));
  ops.push_back(Txn({}, {ReqPut("l1", "x"), ReqPut("l2", "y"), ReqPut("l3", "z")}));
  {
    TxnRequest t;
    for (const char* k : {"l1", "l2", "l3"}) {
      RequestOp op = ReqPut(k, "leased");
      op.mutable_request_put()->set_lease(103);
      *t.add_success() = op;
    }
    ops.push_back(t);
  }
  ops.push_back(MakePut("l2", "leased again", 103, true));
  ops.push_back(MakeRange("l", "m"));
  ops.push_back(MakeLeaseRevoke(103));
  ops.push_back(MakeRange("l", "m"));
  ops.push_back(MakeRange("l", "m", 0));
  ops.push_back(Txn({}, {ReqRange("l1")}));
  return ops;
}

std::vector<Op> RangeScript() {
  std::vector<Op> ops;
  const std::vector<std::pair<std::string, std::string>> initial = {
      {"foo", "1"},  {"foo1", "2"},     {"foo2", "3"}, {"fop", "4"},  {"a", "z"},
      {"b", "y"},    {"c", "x"},        {"foo1", "5"}, {"foo1", "6"}, {"fo", "7"},
      {"\xff", "8"}, {"\xff\xff", "9"}, {"b", "y2"}};
  for (const auto& [k, v] : initial) ops.push_back(MakePut(k, v));
  ops.push_back(MakeDelete("c"));
  ops.push_back(MakePut("c", "x2"));
  ops.push_back(MakePut("foo", "1"));  // same value, new version
  const std::string nul(1, '\0');
  std::vector<std::pair<std::string, std::string>> ranges = {{"foo", ""},
                                                             {"nope", ""},
                                                             {"foo", PrefixEnd("foo")},
                                                             {"fo", PrefixEnd("fo")},
                                                             {"b", nul},
                                                             {nul, nul},
                                                             {"a", "a"},
                                                             {"c", "a"},
                                                             {"\xff", nul},
                                                             {"\xff", PrefixEnd("\xff")},
                                                             {"", nul},
                                                             {"a", "c"}};
  for (const auto& [k, e] : ranges) {
    if (k.empty()) continue;
    ops.push_back(MakeRange(k, e));
  }
  for (int64_t limit : {-1, 0, 1, 2, 3, 100}) {
    RangeRequest r;
    r.set_key(nul);
    r.set_range_end(nul);
    r.set_limit(limit);
    ops.push_back(r);
    r.set_count_only(true);
    ops.push_back(r);
    r.set_count_only(false);
    r.set_keys_only(true);
    ops.push_back(r);
  }
  for (int order = 0; order < 3; ++order) {
    for (int target = 0; target < 5; ++target) {
      for (int64_t limit : {0, 2}) {
        RangeRequest r;
        r.set_key("a");
        r.set_range_end(nul);
        r.set_sort_order(static_cast<RangeRequest::SortOrder>(order));
        r.set_sort_target(static_cast<RangeRequest::SortTarget>(target));
        r.set_limit(limit);
        ops.push_back(r);
        r.set_revision(9);
        ops.push_back(r);
      }
    }
  }
  // Paginations, each page from just after the previous page's last key (as Kubernetes and etcd's
  // mirror page), at the current revision and pinned to revision 9, each page asked twice: cairn
  // takes a page's count from the page before (server/mvcc/range_count_cache.h).
  {
    const std::vector<std::string> now = {"a",    "b",    "c",   "fo",   "foo",
                                          "foo1", "foo2", "fop", "\xff", "\xff\xff"};
    const std::vector<std::string> at9 = {"a", "b", "c", "foo", "foo1", "foo2", "fop"};
    for (int64_t rev : {0, 9}) {
      const std::vector<std::string>& keys = rev == 0 ? now : at9;
      for (size_t limit : {1, 3}) {
        for (size_t last = 0; last <= keys.size(); last += limit) {
          RangeRequest r;
          r.set_key(last == 0 ? nul : keys[last - 1] + nul);
          r.set_range_end(nul);
          r.set_limit(static_cast<int64_t>(limit));
          r.set_revision(rev);
          ops.push_back(r);
          ops.push_back(r);
        }
      }
    }
  }
  // Historical reads over the whole history, with and without a prefix.
  for (int64_t rev = 1; rev <= 18; ++rev) {
    ops.push_back(MakeRange(nul, nul, rev));
    ops.push_back(MakeRange("foo1", "", rev));
    RangeRequest r;
    r.set_key("c");
    r.set_revision(rev);
    r.set_count_only(true);
    ops.push_back(r);
  }
  // Revision filters.
  for (int64_t lo : {0, 3, 9}) {
    for (int64_t hi : {0, 5, 12}) {
      RangeRequest r;
      r.set_key(nul);
      r.set_range_end(nul);
      r.set_min_mod_revision(lo);
      r.set_max_mod_revision(hi);
      ops.push_back(r);
      r.clear_min_mod_revision();
      r.clear_max_mod_revision();
      r.set_min_create_revision(lo);
      r.set_max_create_revision(hi);
      ops.push_back(r);
      r.set_limit(1);
      ops.push_back(r);
      r.set_count_only(true);
      ops.push_back(r);
    }
  }
  {
    RangeRequest r;
    r.set_key("foo");
    r.set_range_end(PrefixEnd("foo"));
    r.set_serializable(true);
    ops.push_back(r);
    r.set_revision(5);
    ops.push_back(r);
    r.set_keys_only(true);
    r.set_sort_order(RangeRequest::DESCEND);
    r.set_sort_target(RangeRequest::MOD);
    ops.push_back(r);
  }
  // Deletes with prev_kv, then reads.
  ops.push_back(MakeDelete("foo", PrefixEnd("foo"), true));
  ops.push_back(MakeDelete("foo", PrefixEnd("foo"), true));
  ops.push_back(MakeDelete("zz", "a", true));
  ops.push_back(MakeRange(nul, nul));
  ops.push_back(MakeRange("foo1", "", 8));
  ops.push_back(MakePut("foo1", "again", 0, true));
  ops.push_back(MakeRange("foo1"));
  ops.push_back(MakeDelete("a", nul));
  ops.push_back(MakeRange(nul, nul));
  ops.push_back(MakeRange(nul, nul, 20));
  return ops;
}

std::vector<Op> TxnScript() {
  std::vector<Op> ops;
  ops.push_back(MakePut("a", "1"));   // rev 2
  ops.push_back(MakePut("b", "2"));   // rev 3
  ops.push_back(MakePut("b", "3"));   // rev 4
  ops.push_back(MakePut("c", "10"));  // rev 5
  // Empty txn and read-only txns do not bump the revision.
  ops.push_back(Txn({}, {}));
  ops.push_back(Txn({}, {ReqRange("a"), ReqRange("a", "z")}));
  // Every target × every result on an existing key, a missing key and a range.
  const std::vector<std::string> keys = {"b", "missing"};
  for (int target = 0; target < 5; ++target) {
    for (int result = 0; result < 4; ++result) {
      for (const std::string& key : keys) {
        for (int64_t number : {0, 2, 3, 4, 101}) {
          auto t = static_cast<Compare::CompareTarget>(target);
          if (t == Compare::VALUE && number != 0) continue;
          for (const std::string& value : {std::string("3"), std::string(""), std::string("2")}) {
            if (t != Compare::VALUE && !value.empty()) continue;
            ops.push_back(
                Txn({Cmp(key, t, static_cast<Compare::CompareResult>(result), number, value)},
                    {ReqRange("a")}, {ReqRange("c")}));
          }
        }
        // The same compare over the range [a, d) and over everything.
        ops.push_back(Txn({Cmp("a", static_cast<Compare::CompareTarget>(target),
                               static_cast<Compare::CompareResult>(result), 2, "1", "d")},
                          {ReqRange("a")}, {ReqRange("c")}));
        ops.push_back(
            Txn({Cmp("a", static_cast<Compare::CompareTarget>(target),
                     static_cast<Compare::CompareResult>(result), 1, "1", std::string(1, '\0'))},
                {ReqRange("a")}, {ReqRange("c")}));
        ops.push_back(Txn({Cmp("x", static_cast<Compare::CompareTarget>(target),
                               static_cast<Compare::CompareResult>(result), 0, "", "z")},
                          {ReqRange("a")}, {ReqRange("c")}));
      }
    }
  }
  // Several compares: all must hold.
  ops.push_back(Txn({Cmp("a", Compare::VALUE, Compare::EQUAL, 0, "1"),
                     Cmp("b", Compare::LEASE, Compare::EQUAL, 0)},
                    {ReqPut("a", "11", true), ReqDelete("c", "", true), ReqRange("a", "z")},
                    {ReqPut("a", "fail")}));
  ops.push_back(Txn({Cmp("a", Compare::VALUE, Compare::EQUAL, 0, "1"),
                     Cmp("b", Compare::LEASE, Compare::EQUAL, 0)},
                    {ReqPut("a", "11")},
                    {ReqPut("a", "fail", true), ReqRange("a"), ReqPut("c", "back")}));
  // Writes and reads in one txn: reads see earlier writes of the same txn.
  ops.push_back(Txn({}, {ReqPut("n1", "x"), ReqRange("n", "o"), ReqPut("n2", "y"),
                         ReqRange("n", "o"), ReqDelete("n1", "", true), ReqRange("n", "o")}));
  // Nested transactions.
  TxnRequest inner_ok = Txn({Cmp("n2", Compare::VERSION, Compare::EQUAL, 1)},
                            {ReqPut("i1", "s", true), ReqRange("i", "j")}, {ReqPut("i1", "f")});
  TxnRequest inner_bad = Txn({Cmp("n2", Compare::VERSION, Compare::GREATER, 5)},
                             {ReqPut("i2", "s")}, {ReqPut("i2", "f", true), ReqRange("i", "j")});
  ops.push_back(Txn({}, {ReqTxn(inner_ok), ReqTxn(inner_bad), ReqRange("i", "j")}));
  ops.push_back(Txn({Cmp("zz", Compare::CREATE, Compare::GREATER, 0)}, {ReqTxn(inner_ok)},
                    {ReqTxn(inner_bad), ReqTxn(Txn({}, {ReqTxn(inner_ok)}))}));
  ops.push_back(Txn({}, {ReqTxn(Txn({}, {}))}));
  ops.push_back(Txn({}, {ReqTxn(Txn({}, {ReqRange("i", "j")}))}));
  ops.push_back(MakeRange(std::string(1, '\0'), std::string(1, '\0')));
  // Compares on mod/create revisions after the history above.
  for (int64_t rev = 0; rev < 12; ++rev) {
    ops.push_back(Txn({Cmp("a", Compare::MOD, Compare::LESS, rev)}, {ReqRange("a")}));
    ops.push_back(Txn({Cmp("i", Compare::CREATE, Compare::GREATER, rev, "", "j")}, {}));
  }
  return ops;
}

std::vector<Op> CompactScript() {
  std::vector<Op> ops;
  for (int i = 0; i < 10; ++i) ops.push_back(MakePut(absl::StrCat("k", i % 4), absl::StrCat(i)));
  ops.push_back(MakeDelete("k0"));  // rev 12
  ops.push_back(MakeCompact(6));
  for (int64_t rev = 4; rev <= 14; ++rev) {
    ops.push_back(MakeRange("k", "l", rev));
    RangeRequest r;
    r.set_key("k");
    r.set_range_end("l");
    r.set_revision(rev);
    r.set_count_only(true);
    ops.push_back(r);
  }
  ops.push_back(MakeCompact(12, true));
  ops.push_back(MakeRange("k", "l", 11));
  ops.push_back(MakeRange("k", "l", 12));
  ops.push_back(MakeRange("k0", "", 12));
  ops.push_back(MakePut("k0", "back"));
  ops.push_back(MakeRange("k0"));
  ops.push_back(MakeCompact(13));
  ops.push_back(MakeCompact(13));
  ops.push_back(MakeRange("k", "l", 13));
  {
    TxnRequest t = Txn({}, {ReqPut("k9", "t")});
    RequestOp historical = ReqRange("k", "l");
    historical.mutable_request_range()->set_revision(12);
    *t.add_success() = historical;
    ops.push_back(t);
  }
  ops.push_back(RangeOp("k", "l", [](RangeRequest* r) {
    r->set_revision(13);
    r->set_min_mod_revision(1);
    r->set_sort_order(RangeRequest::DESCEND);
    r->set_sort_target(RangeRequest::CREATE);
  }));
  return ops;
}

std::vector<Op> RandomSequence(uint64_t seed, int count, bool leases) {
  return Generator(seed, leases).Sequence(count);
}

}  // namespace cairn::testing::compat
