// Leases across a crash: remaining TTLs are checkpointed through the log, so kill -9 and restart
// does not hand every lease a fresh full TTL (etcd 3.4 resets them); attached keys and lease
// expiry survive the restart. cairn only: etcd 3.4 does not persist checkpoints.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

int64_t AppliedIndex(etcdserverpb::Maintenance::Stub* m) {
  grpc::ClientContext ctx;
  etcdserverpb::StatusResponse r;
  if (!m->Status(&ctx, etcdserverpb::StatusRequest(), &r).ok()) return -1;
  return static_cast<int64_t>(r.raftappliedindex());
}

etcdserverpb::LeaseTimeToLiveResponse TimeToLive(etcdserverpb::Lease::Stub* l, int64_t id) {
  grpc::ClientContext ctx;
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  req.set_keys(true);
  etcdserverpb::LeaseTimeToLiveResponse r;
  EXPECT_TRUE(l->LeaseTimeToLive(&ctx, req, &r).ok());
  return r;
}

TEST(LeaseRestartTest, CheckpointedTtlSurvivesKillAndRestart) {
  ASSERT_TRUE(CairnBuilt());
  auto cluster = ServerCluster::Start(
      ClusterOptions{ServerKind::kCairn, 1, {"--experimental-lease-checkpoint-interval=100ms"}});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto channel = MakeTestChannel((*cluster)->ClientEndpoint(0));
  auto lease = etcdserverpb::Lease::NewStub(channel);
  auto kv = etcdserverpb::KV::NewStub(channel);
  auto maint = etcdserverpb::Maintenance::NewStub(channel);

  grpc::ClientContext gctx;
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(20);
  etcdserverpb::LeaseGrantResponse granted;
  ASSERT_TRUE(lease->LeaseGrant(&gctx, grant, &granted).ok());
  grpc::ClientContext pctx;
  etcdserverpb::PutRequest put;
  put.set_key("leased");
  put.set_lease(granted.id());
  etcdserverpb::PutResponse put_resp;
  ASSERT_TRUE(kv->Put(&pctx, put, &put_resp).ok());

  // Wait (bounded) until the lease has visibly run down, then until two more entries have been
  // applied (checkpoints are the only writes now), so a checkpoint taken after the run-down is
  // durable before the kill.
  int64_t ttl = 20;
  for (int i = 0; i < 300 && ttl > 17; ++i) {
    ttl = TimeToLive(lease.get(), granted.id()).ttl();
    if (ttl > 17) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_LE(ttl, 17);
  int64_t applied = AppliedIndex(maint.get());
  for (int i = 0; i < 300 && AppliedIndex(maint.get()) < applied + 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(AppliedIndex(maint.get()), applied + 2);

  (*cluster)->Kill(0);
  ASSERT_TRUE((*cluster)->Restart(0).ok());
  channel = MakeTestChannel((*cluster)->ClientEndpoint(0));
  lease = etcdserverpb::Lease::NewStub(channel);
  auto after = TimeToLive(lease.get(), granted.id());
  EXPECT_EQ(after.grantedttl(), 20);
  EXPECT_GT(after.ttl(), 0);
  EXPECT_LE(after.ttl(), 17) << "the restart reset the lease to its full TTL";
  ASSERT_EQ(after.keys_size(), 1);
  EXPECT_EQ(after.keys(0), "leased");
}

}  // namespace
}  // namespace cairn::testing
