// The lock and election services at start and shutdown: a call that arrives before the host has
// its in-process client runs once it has; ClientServer::Shutdown with a Lock, a Campaign and an
// Observe pending ends each of them with "etcdserver: server stopped" and returns without
// waiting for its deadline (a member, its ClientServer and real gRPC in this process).
#include "server/api/recipe_services.h"

#include <filesystem>
#include <memory>
#include <string>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/synchronization/mutex.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/api/client_server.h"
#include "server/etcdserver/server.h"
#include "tests/harness/cluster_ops.h"

namespace cairn::api {
namespace {

// One async unary call and its outcome.
struct Outcome {
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  grpc::Status status ABSL_GUARDED_BY(mu);
  void Set(const grpc::Status& s) {
    absl::MutexLock l(&mu);
    status = s;
    done = true;
  }
  grpc::Status Wait() {
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(&done));
    return status;
  }
};

TEST(RecipeHostTest, CallsBeforeStartRunOnceStartedAndNoneAfterStop) {
  RecipeHost host;
  int ran = 0;
  auto registered = host.Add([] {});
  ASSERT_TRUE(registered.ok()) << registered.status();
  host.WhenStarted([&] { ++ran; });
  EXPECT_EQ(ran, 0);
  EXPECT_FALSE(host.kv().ok());
  // The in-process client does not dial: any channel will do here.
  ASSERT_TRUE(
      host.Start(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()), "").ok());
  EXPECT_EQ(ran, 1);
  host.WhenStarted([&] { ++ran; });
  EXPECT_EQ(ran, 2);
  EXPECT_TRUE(host.kv().ok());
  host.Remove(*registered);

  int stopped = 0;
  ASSERT_TRUE(host.Add([&] { ++stopped; }).ok());
  host.Stop();
  EXPECT_EQ(stopped, 1);
  host.WhenStarted([&] { ++ran; });
  EXPECT_EQ(ran, 2);
  auto refused = host.Add([] {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_EQ(refused.status().message(), "etcdserver: server stopped");
  EXPECT_EQ(host.kv().status().message(), "etcdserver: server stopped");
}

TEST(RecipeServicesTest, ShutdownEndsPendingLockCampaignAndObserve) {
  char tmpl[] = "/tmp/cairn-recipes-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  etcdserver::ServerConfig config;
  config.data_dir = dir;
  auto server = etcdserver::Server::Open(config);
  ASSERT_TRUE(server.ok()) << server.status();
  auto client_server = std::make_unique<ClientServer>(server->get());
  auto bound = client_server->Start({"http://127.0.0.1:0"});
  ASSERT_TRUE(bound.ok()) << bound.status();
  auto channel = grpc::CreateChannel((*bound)[0], grpc::InsecureChannelCredentials());
  auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(300); };
  auto lease = etcdserverpb::Lease::NewStub(channel);
  auto kv = etcdserverpb::KV::NewStub(channel);
  auto lock = v3lockpb::Lock::NewStub(channel);
  auto election = v3electionpb::Election::NewStub(channel);

  auto grant = [&] {
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(60);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    EXPECT_TRUE(lease->LeaseGrant(&ctx, req, &resp).ok());
    return resp.id();
  };
  auto keys = [&](const std::string& prefix) {
    etcdserverpb::RangeRequest req;
    req.set_key(prefix);
    std::string end = prefix;
    end.back() = static_cast<char>(end.back() + 1);
    req.set_range_end(end);
    req.set_count_only(true);
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    EXPECT_TRUE(kv->Range(&ctx, req, &resp).ok());
    return resp.count();
  };

  int64_t holder = grant();
  int64_t waiter = grant();
  // The holder takes the lock and leads the election.
  v3lockpb::LockRequest hold;
  hold.set_name("l");
  hold.set_lease(holder);
  v3lockpb::LockResponse held;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    ASSERT_TRUE(lock->Lock(&ctx, hold, &held).ok());
  }
  v3electionpb::CampaignRequest lead;
  lead.set_name("e");
  lead.set_lease(holder);
  lead.set_value("h");
  v3electionpb::CampaignResponse leading;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    ASSERT_TRUE(election->Campaign(&ctx, lead, &leading).ok());
  }

  // Pending: a Lock and a Campaign behind the holder, and an Observe of an election without a
  // leader.
  v3lockpb::LockRequest lock_req = hold;
  lock_req.set_lease(waiter);
  v3lockpb::LockResponse lock_resp;
  grpc::ClientContext lock_ctx;
  lock_ctx.set_deadline(deadline());
  Outcome lock_outcome;
  lock->async()->Lock(&lock_ctx, &lock_req, &lock_resp,
                      [&](grpc::Status s) { lock_outcome.Set(s); });
  v3electionpb::CampaignRequest campaign = lead;
  campaign.set_lease(waiter);
  v3electionpb::CampaignResponse campaign_resp;
  grpc::ClientContext campaign_ctx;
  campaign_ctx.set_deadline(deadline());
  Outcome campaign_outcome;
  election->async()->Campaign(&campaign_ctx, &campaign, &campaign_resp,
                              [&](grpc::Status s) { campaign_outcome.Set(s); });
  v3electionpb::LeaderRequest observe_req;
  observe_req.set_name("nobody");
  grpc::ClientContext observe_ctx;
  observe_ctx.set_deadline(deadline());
  auto observe = election->Observe(&observe_ctx, observe_req);
  ASSERT_TRUE(cairn::testing::PollUntil([&] { return keys("l/") == 2 && keys("e/") == 2; },
                                        std::chrono::seconds(30)));
  ASSERT_TRUE(cairn::testing::PollUntil(
      [&] { return client_server->gate().Stats(Method::kObserve).in_flight() == 1; },
      std::chrono::seconds(30)));

  // A deadline far beyond the test's timeout: Shutdown must not need it.
  client_server->Shutdown(/*deadline_ms=*/600000);
  grpc::Status lock_status = lock_outcome.Wait();
  EXPECT_EQ(lock_status.error_code(), grpc::UNAVAILABLE) << lock_status.error_message();
  EXPECT_EQ(lock_status.error_message(), "etcdserver: server stopped");
  grpc::Status campaign_status = campaign_outcome.Wait();
  EXPECT_EQ(campaign_status.error_code(), grpc::UNAVAILABLE) << campaign_status.error_message();
  v3electionpb::LeaderResponse observed;
  EXPECT_FALSE(observe->Read(&observed));
  grpc::Status observe_status = observe->Finish();
  EXPECT_EQ(observe_status.error_code(), grpc::UNAVAILABLE) << observe_status.error_message();

  client_server.reset();
  server->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::api
