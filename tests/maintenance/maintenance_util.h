// Helpers of the maintenance tests (tests/maintenance): gRPC calls of the Maintenance and KV
// services with deadlines, etcdctl, and a member's command line.
#pragma once

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/storage/backend.h"
#include "tests/harness/cluster_ops.h"
#include "tests/harness/server_process.h"

namespace cairn::testing::maintenance {

inline constexpr int kHeartbeatMs = 50;
inline constexpr int kElectionMs = 500;
inline constexpr int kBoundMs = 30000;  // "eventually" bound, not a performance assertion

inline ClusterOptions Fast(ServerKind kind, int members, std::vector<std::string> extra = {}) {
  ClusterOptions o;
  o.kind = kind;
  o.members = members;
  o.extra_args = std::move(extra);
  o.heartbeat_interval_ms = kHeartbeatMs;
  o.election_timeout_ms = kElectionMs;
  return o;
}

inline std::unique_ptr<grpc::ClientContext> Ctx(int timeout_ms = 10000) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  return ctx;
}

// "CODE: message" of a failed call, "OK" otherwise.
inline std::string Outcome(const grpc::Status& st) {
  if (st.ok()) return "OK";
  return absl::StrCat(static_cast<int>(st.error_code()), ": ", st.error_message());
}

class Endpoint {
 public:
  explicit Endpoint(const std::string& endpoint)
      : channel_(MakeTestChannel(endpoint)),
        kv_(etcdserverpb::KV::NewStub(channel_)),
        lease_(etcdserverpb::Lease::NewStub(channel_)),
        maint_(etcdserverpb::Maintenance::NewStub(channel_)) {}

  // Waits until the channel is connected: for writers that assert no write fails (see
  // MakeConnectedTestChannel on a spurious first-connect failure of gRPC 1.51's client).
  bool WaitConnected(int timeout_ms = kBoundMs) {
    return channel_->WaitForConnected(std::chrono::system_clock::now() +
                                      std::chrono::milliseconds(timeout_ms));
  }

  grpc::Status Put(const std::string& key, const std::string& value,
                   etcdserverpb::PutResponse* out = nullptr) {
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    etcdserverpb::PutResponse resp;
    grpc::Status st = kv_->Put(Ctx().get(), req, &resp);
    if (out) *out = resp;
    return st;
  }
  grpc::Status Get(const std::string& key, etcdserverpb::RangeResponse* out, int64_t revision = 0,
                   const std::string& range_end = "") {
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    req.set_range_end(range_end);
    req.set_revision(revision);
    return kv_->Range(Ctx().get(), req, out);
  }
  grpc::Status Delete(const std::string& key) {
    etcdserverpb::DeleteRangeRequest req;
    req.set_key(key);
    etcdserverpb::DeleteRangeResponse resp;
    return kv_->DeleteRange(Ctx().get(), req, &resp);
  }
  grpc::Status Compact(int64_t revision) {
    etcdserverpb::CompactionRequest req;
    req.set_revision(revision);
    req.set_physical(true);
    etcdserverpb::CompactionResponse resp;
    return kv_->Compact(Ctx().get(), req, &resp);
  }
  grpc::Status ReadTxn(const std::string& key) {
    etcdserverpb::TxnRequest req;
    req.add_success()->mutable_request_range()->set_key(key);
    etcdserverpb::TxnResponse resp;
    return kv_->Txn(Ctx().get(), req, &resp);
  }
  grpc::Status WriteTxn(const std::string& key, const std::string& value) {
    etcdserverpb::TxnRequest req;
    auto* put = req.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    etcdserverpb::TxnResponse resp;
    return kv_->Txn(Ctx().get(), req, &resp);
  }
  grpc::Status LeaseGrant(int64_t ttl) {
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl);
    etcdserverpb::LeaseGrantResponse resp;
    return lease_->LeaseGrant(Ctx().get(), req, &resp);
  }
  grpc::Status Alarm(etcdserverpb::AlarmRequest::AlarmAction action, uint64_t member,
                     etcdserverpb::AlarmType type, etcdserverpb::AlarmResponse* out) {
    etcdserverpb::AlarmRequest req;
    req.set_action(action);
    req.set_memberid(member);
    req.set_alarm(type);
    return maint_->Alarm(Ctx().get(), req, out);
  }
  grpc::Status Defragment() {
    etcdserverpb::DefragmentResponse resp;
    return maint_->Defragment(Ctx(60000).get(), etcdserverpb::DefragmentRequest(), &resp);
  }
  grpc::Status HashKV(int64_t revision, etcdserverpb::HashKVResponse* out) {
    etcdserverpb::HashKVRequest req;
    req.set_revision(revision);
    return maint_->HashKV(Ctx().get(), req, out);
  }
  grpc::Status Status(etcdserverpb::StatusResponse* out) {
    return maint_->Status(Ctx().get(), etcdserverpb::StatusRequest(), out);
  }
  int64_t Revision() {
    etcdserverpb::RangeResponse r;
    return Get("\x01", &r).ok() ? r.header().revision() : -1;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maint_;
};

inline CommandResult Etcdctl(const std::string& endpoints, const std::vector<std::string>& args,
                             int timeout_ms = 30000) {
  std::vector<std::string> argv = {"env",         "ETCDCTL_API=3", EtcdctlPath(),
                                   "--endpoints", endpoints,       "--command-timeout=20s"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, "", timeout_ms);
}

inline std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout:\n", r.out, "\nstderr:\n", r.err);
}

// The command line of a running process (from /proc).
inline std::vector<std::string> CommandLine(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> out;
  std::string item;
  for (char c : ss.str()) {
    if (c == '\0') {
      out.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  return out;
}

// The value following `flag` in a command line ("" if absent).
inline std::string FlagValue(const std::vector<std::string>& argv, const std::string& flag) {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag) return argv[i + 1];
  }
  return "";
}

// The offline edit of a stopped member's store: one value of the newest revision in the `rev`
// column family changes, so its HashKV differs from its peers'.
inline absl::Status DamageNewestRevision(const std::string& data_dir) {
  auto backend = storage::Backend::Open(data_dir + "/member/db");
  if (!backend.ok()) return backend.status();
  rocksdb::DB* db = (*backend)->db();
  auto* rev_cf = (*backend)->cf(storage::Cf::kRev);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), rev_cf));
  it->SeekToLast();
  if (!it->Valid()) return absl::NotFoundError("no revision in " + data_dir);
  std::string value = it->value().ToString();
  // A live put's value is in its `latest` record (docs/keyspace.md, "One copy of each value"):
  // damage that one.
  auto* cf = rev_cf;
  std::string key = it->key().ToString();
  if (!value.empty() && value[0] == 'l') {
    mvccpb::KeyValue marker;
    if (!marker.ParseFromArray(value.data() + 1, static_cast<int>(value.size() - 1))) {
      return absl::DataLossError("corrupt live history record");
    }
    cf = (*backend)->cf(storage::Cf::kLatest);
    key = marker.key();
    rocksdb::Status get = db->Get(rocksdb::ReadOptions(), cf, key, &value);
    if (!get.ok()) return absl::InternalError(get.ToString());
  }
  value.back() ^= 0x01;
  rocksdb::Status put = db->Put(rocksdb::WriteOptions(), cf, key, value);
  if (!put.ok()) return absl::InternalError(put.ToString());
  (*backend)->Sync();
  return absl::OkStatus();
}

}  // namespace cairn::testing::maintenance
