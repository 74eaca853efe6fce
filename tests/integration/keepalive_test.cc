// Client keepalive pings on a quiet stream, against etcd and cairn. etcd lets a client ping once
// per 5 s (--grpc-keepalive-min-time); gRPC's own server default is once per 5 minutes, and it
// answers faster pings with GOAWAY "too_many_pings", which ends every call on the connection.
// Found by `etcdctl compact --physical` failing with "Too many pings" on a 40 s compaction:
// etcdctl pings while it waits (its --keepalive-time, raised to gRPC-Go's 10 s floor).
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

class KeepaliveTest : public ::testing::TestWithParam<ServerKind> {};

// A watch stream that stays quiet for 26 s while its client pings every 6 s still delivers the
// next event: the server never refused the pings.
TEST_P(KeepaliveTest, QuietStreamSurvivesPingsEverySixSeconds) {
  auto c = ServerCluster::Start(ClusterOptions{GetParam()});
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string endpoint = (*c)->ClientEndpoint(0);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 6000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // keep pinging a quiet connection
  auto channel = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
  auto watch = etcdserverpb::Watch::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
  auto stream = watch->Watch(&ctx);
  etcdserverpb::WatchRequest req;
  req.mutable_create_request()->set_key("quiet");
  ASSERT_TRUE(stream->Write(req));
  etcdserverpb::WatchResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_TRUE(resp.created());

  // The quiet time is the scenario itself (four pings), not a wait for a condition.
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::seconds(26));
    auto kv = etcdserverpb::KV::NewStub(MakeTestChannel(endpoint));
    grpc::ClientContext put_ctx;
    put_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    etcdserverpb::PutRequest put;
    put.set_key("quiet");
    put.set_value("v");
    etcdserverpb::PutResponse put_resp;
    grpc::Status s = kv->Put(&put_ctx, put, &put_resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  });
  bool got = stream->Read(&resp);
  writer.join();
  if (!got) {
    grpc::Status s = stream->Finish();
    FAIL() << "the quiet stream ended: " << s.error_code() << " " << s.error_message();
  }
  ASSERT_EQ(resp.events_size(), 1);
  EXPECT_EQ(resp.events(0).kv().value(), "v");
  ctx.TryCancel();
}

INSTANTIATE_TEST_SUITE_P(Servers, KeepaliveTest, ::testing::ValuesIn(TestedServerKinds()),
                         [](const auto& info) { return ServerKindName(info.param); });

}  // namespace
}  // namespace cairn::testing
