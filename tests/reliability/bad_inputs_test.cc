// The bad-input catalogue (docs/bad_inputs.md), table-driven: every row is sent to a fresh cairn
// and a fresh etcd 3.4 and the answers (gRPC code and message, or the response) must be equal;
// the store's revision afterwards shows that the rejected rows changed nothing. Rows about the
// transport (oversized message, malformed protobuf, a flood of streams) compare the gRPC code
// only (the message text comes from each server's gRPC library) and check the server still
// answers.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/compat/differential.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

using compat::Op;

struct Row {
  std::string name;
  Op op;
};

etcdserverpb::RangeRequest RangeWith(const std::string& key, const std::string& end,
                                     int64_t limit) {
  etcdserverpb::RangeRequest r;
  r.set_key(key);
  r.set_range_end(end);
  r.set_limit(limit);
  return r;
}

etcdserverpb::LeaseGrantRequest Grant(int64_t id, int64_t ttl) {
  etcdserverpb::LeaseGrantRequest r;
  r.set_id(id);
  r.set_ttl(ttl);
  return r;
}

// Rows not already in the differential scripts (tests/compat: ErrorScript, LeaseScript cover
// empty keys, revisions, duplicate keys in a txn, --max-txn-ops, request size, unknown leases).
std::vector<Row> Table() {
  const std::string invalid_utf8 = "\xff\xfe\xc3\x28";
  const size_t max_request = 1572864;  // etcd's --max-request-bytes default (docs/limits.md)
  return {
      {"setup: a key", compat::MakePut("b", "1")},
      {"range_end below key (range)", compat::MakeRange("m", "c")},
      {"range_end below key (delete)", compat::MakeDelete("m", "c")},
      {"range_end equal to key", compat::MakeRange("b", "b")},
      {"negative limit", RangeWith("a", "z", -1)},
      {"huge limit", RangeWith("a", "z", INT64_MAX)},
      {"negative revision in range", compat::MakeRange("b", "", -1)},
      {"invalid UTF-8 key and value (bytes are fine)", compat::MakePut(invalid_utf8, invalid_utf8)},
      {"invalid UTF-8 range", compat::MakeRange(invalid_utf8)},
      {"key just under the request limit", compat::MakePut(std::string(max_request - 64, 'k'), "")},
      {"value over the request limit", compat::MakePut("v", std::string(max_request + 1, 'v'))},
      {"key over the request limit", compat::MakePut(std::string(max_request + 1, 'k'), "")},
      {"lease TTL zero", Grant(201, 0)},
      {"lease TTL negative", Grant(202, -10)},
      {"lease TTL huge", Grant(203, INT64_MAX)},
      {"lease id negative", Grant(-7, 60)},
      {"revoke unknown lease", compat::MakeLeaseRevoke(987654)},
      {"put with unknown lease", compat::MakePut("l", "1", 987654)},
      {"compact negative", compat::MakeCompact(-3)},
      {"compact future", compat::MakeCompact(1000)},
      {"final read (revision shows what changed)", compat::MakeRange("a", "z")},
  };
}

class BadInputsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto etcd = ServerCluster::Start({.kind = ServerKind::kEtcd, .members = 1});
    if (etcd.ok()) etcd_ = etcd->release();
    auto cairn = ServerCluster::Start({.kind = ServerKind::kCairn, .members = 1});
    if (cairn.ok()) cairn_ = cairn->release();
  }
  void SetUp() override {
    ASSERT_NE(etcd_, nullptr) << "etcd did not start";
    ASSERT_NE(cairn_, nullptr) << "cairn did not start";
  }
  static void TearDownTestSuite() {
    delete etcd_;
    delete cairn_;
  }
  static ServerCluster* etcd_;
  static ServerCluster* cairn_;
};
ServerCluster* BadInputsTest::etcd_ = nullptr;
ServerCluster* BadInputsTest::cairn_ = nullptr;

TEST_F(BadInputsTest, KvAndLeaseRowsAnswerAsEtcdAndChangeNothing) {
  std::vector<Row> table = Table();
  std::vector<Op> ops;
  for (const Row& row : table) ops.push_back(row.op);
  std::vector<std::string> want = compat::RunSequence(etcd_->ClientEndpoint(0), ops);
  std::vector<std::string> got = compat::RunSequence(cairn_->ClientEndpoint(0), ops);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(got[i].substr(0, 2000), want[i].substr(0, 2000)) << "row '" << table[i].name << "'";
  }
}

// A watch from a compacted revision is canceled with compact_revision, as etcd does.
TEST_F(BadInputsTest, WatchOnCompactedRevision) {
  auto answer = [](const std::string& endpoint) {
    std::vector<Op> ops = {compat::MakePut("w", "1"), compat::MakePut("w", "2"),
                           compat::MakePut("w", "3"), compat::MakeCompact(3)};
    compat::RunSequence(endpoint, ops);
    auto stub = etcdserverpb::Watch::NewStub(MakeTestChannel(endpoint));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->Watch(&ctx);
    etcdserverpb::WatchRequest req;
    req.mutable_create_request()->set_key("w");
    req.mutable_create_request()->set_start_revision(2);
    EXPECT_TRUE(stream->Write(req));
    std::string out;
    etcdserverpb::WatchResponse resp;
    while (stream->Read(&resp)) {
      absl::StrAppend(&out, "created=", resp.created(), " canceled=", resp.canceled(),
                      " compact_revision=", resp.compact_revision(), " events=", resp.events_size(),
                      ";");
      if (resp.canceled()) break;
    }
    ctx.TryCancel();
    (void)stream->Finish();
    return out;
  };
  const std::string want = answer(etcd_->ClientEndpoint(0));
  EXPECT_NE(want.find("canceled=1 compact_revision=3"), std::string::npos) << want;
  EXPECT_EQ(answer(cairn_->ClientEndpoint(0)), want);
}

grpc::StatusCode RawCall(const std::string& endpoint, const std::string& method,
                         const std::string& bytes) {
  grpc::GenericStub stub(MakeTestChannel(endpoint));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = s;
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return status.error_code();
}

// Whether a plain Range succeeds; on failure, the answer it got (printed by the assertion).
::testing::AssertionResult Answers(const std::string& endpoint) {
  std::vector<std::string> t = compat::RunSequence(endpoint, {compat::MakeRange("a")});
  if (!t.empty() && t[0].rfind("OK", 0) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "Range answered: " << (t.empty() ? "nothing" : t[0]);
}

// Malformed protobuf (raw bytes through a generic stub) and a message over the gRPC receive
// limit: the same code as etcd, and the server keeps answering.
TEST_F(BadInputsTest, MalformedAndOversizedMessages) {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"/etcdserverpb.KV/Put", std::string("\x0a\xff\xff\xff\xff\x0f", 6)},  // length past the end
      {"/etcdserverpb.KV/Range", std::string("\xff\xff\xff", 3)},            // bad tag
      {"/etcdserverpb.KV/Txn", std::string("\x0a\x02\x08", 3)},              // truncated nested
      {"/etcdserverpb.KV/Put", std::string(3 * 1024 * 1024, 'x')},           // over the limit
  };
  for (const auto& [method, bytes] : rows) {
    const grpc::StatusCode want = RawCall(etcd_->ClientEndpoint(0), method, bytes);
    const grpc::StatusCode got = RawCall(cairn_->ClientEndpoint(0), method, bytes);
    EXPECT_NE(want, grpc::StatusCode::OK) << method << " " << bytes.size() << " bytes";
    EXPECT_EQ(got, want) << method << " " << bytes.size() << " bytes";
  }
  EXPECT_TRUE(Answers(cairn_->ClientEndpoint(0)));
}

// Many streams from one client at once: each is created or refused with a clear error, and the
// server still answers afterwards.
TEST_F(BadInputsTest, FloodOfWatchStreams) {
  constexpr int kStreams = 400;
  auto channel = MakeTestChannel(cairn_->ClientEndpoint(0));
  auto stub = etcdserverpb::Watch::NewStub(channel);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<
      grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>>
      streams;
  int created = 0;
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    streams.push_back(stub->Watch(contexts.back().get()));
    etcdserverpb::WatchRequest req;
    req.mutable_create_request()->set_key(absl::StrCat("flood/", i));
    if (!streams.back()->Write(req)) continue;
    etcdserverpb::WatchResponse resp;
    if (streams.back()->Read(&resp) && resp.created()) ++created;
  }
  EXPECT_GT(created, 0);
  EXPECT_TRUE(Answers(cairn_->ClientEndpoint(0)));
  for (auto& ctx : contexts) ctx->TryCancel();
  for (auto& s : streams) (void)s->Finish();
  EXPECT_TRUE(Answers(cairn_->ClientEndpoint(0)));
}

}  // namespace
}  // namespace cairn::testing
