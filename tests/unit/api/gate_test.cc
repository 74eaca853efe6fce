// The request gate: admission, per-method counting, refusal once closed; and every unary method
// of the KV, Lease, Cluster and Maintenance services passes it (a real member, real gRPC).
#include "server/api/gate.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "gtest/gtest.h"
#include "rocksdb/write_batch.h"
#include "server/api/auth_gate.h"
#include "server/api/client_server.h"
#include "server/base/clock.h"
#include "server/base/errors.h"
#include "server/etcdserver/server.h"
#include "server/storage/backend.h"
#include "tests/harness/cluster_ops.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace cairn::api {
namespace {

TEST(RequestGateTest, CountsOutcomesAndRefusesOnceClosed) {
  RequestGate gate;
  int calls = 0;
  absl::Status last;
  RequestGate::Done done = [&](absl::Status st) {
    ++calls;
    last = st;
  };
  ASSERT_TRUE(gate.Admit(Method::kPut, &done));
  EXPECT_EQ(gate.Stats(Method::kPut).in_flight(), 1);
  done(absl::OkStatus());
  EXPECT_EQ(calls, 1);
  RequestGate::Done failing = [&](absl::Status st) {
    ++calls;
    last = st;
  };
  ASSERT_TRUE(gate.Admit(Method::kPut, &failing));
  failing(absl::NotFoundError("x"));
  RequestGate::MethodStats put = gate.Stats(Method::kPut);
  EXPECT_EQ(put.admitted, 2u);
  EXPECT_EQ(put.finished, 2u);
  EXPECT_EQ(put.in_flight(), 0);
  EXPECT_EQ(put.failed[absl::StatusCode::kNotFound], 1u);
  EXPECT_EQ(gate.Stats(Method::kRange).admitted, 0u);

  gate.Close();
  RequestGate::Done refused = [&](absl::Status st) {
    ++calls;
    last = st;
  };
  EXPECT_FALSE(gate.Admit(Method::kRange, &refused));
  EXPECT_EQ(calls, 3);  // answered at once
  EXPECT_TRUE(base::IsError(last, base::ErrorKind::kStopped)) << last;
  EXPECT_EQ(gate.Stats(Method::kRange).refused, 1u);
  EXPECT_EQ(gate.Stats(Method::kRange).admitted, 0u);
  EXPECT_EQ(MethodName(Method::kLeaseTimeToLive), "LeaseTimeToLive");
  EXPECT_EQ(MethodName(Method::kResign), "Resign");
}

class GateCoverageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-gate-XXXXXX";
    dir_ = mkdtemp(tmpl);
    etcdserver::ServerConfig config;
    config.data_dir = dir_;
    auto server = etcdserver::Server::Open(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_server_ = std::make_unique<ClientServer>(server_.get());
    auto bound = client_server_->Start({"http://127.0.0.1:0"});
    ASSERT_TRUE(bound.ok()) << bound.status();
    channel_ = grpc::CreateChannel((*bound)[0], grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    client_server_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A context whose deadline is far enough for a member that is still electing itself.
  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }
  std::string dir_;
  std::unique_ptr<etcdserver::Server> server_;
  std::unique_ptr<ClientServer> client_server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GateCoverageTest, EveryUnaryMethodPassesTheGate) {
  auto kv = etcdserverpb::KV::NewStub(channel_);
  auto lease = etcdserverpb::Lease::NewStub(channel_);
  auto cluster = etcdserverpb::Cluster::NewStub(channel_);
  auto maintenance = etcdserverpb::Maintenance::NewStub(channel_);
  etcdserverpb::PutRequest put;
  put.set_key("k");
  put.set_value("v");
  etcdserverpb::PutResponse put_resp;
  ASSERT_TRUE(kv->Put(Ctx().get(), put, &put_resp).ok());
  etcdserverpb::RangeRequest range;
  range.set_key("k");
  etcdserverpb::RangeResponse range_resp;
  ASSERT_TRUE(kv->Range(Ctx().get(), range, &range_resp).ok());
  EXPECT_EQ(range_resp.kvs_size(), 1);
  etcdserverpb::TxnRequest txn;
  *txn.add_success()->mutable_request_put() = put;
  etcdserverpb::TxnResponse txn_resp;
  ASSERT_TRUE(kv->Txn(Ctx().get(), txn, &txn_resp).ok());
  etcdserverpb::DeleteRangeRequest del;
  del.set_key("k");
  etcdserverpb::DeleteRangeResponse del_resp;
  ASSERT_TRUE(kv->DeleteRange(Ctx().get(), del, &del_resp).ok());
  etcdserverpb::CompactionRequest compact;
  compact.set_revision(put_resp.header().revision());
  etcdserverpb::CompactionResponse compact_resp;
  ASSERT_TRUE(kv->Compact(Ctx().get(), compact, &compact_resp).ok());
  // A failure is counted as one, by code: an empty key.
  etcdserverpb::PutRequest empty;
  EXPECT_EQ(kv->Put(Ctx().get(), empty, &put_resp).error_code(), grpc::INVALID_ARGUMENT);

  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(30);
  etcdserverpb::LeaseGrantResponse grant_resp;
  ASSERT_TRUE(lease->LeaseGrant(Ctx().get(), grant, &grant_resp).ok());
  etcdserverpb::LeaseTimeToLiveRequest ttl;
  ttl.set_id(grant_resp.id());
  etcdserverpb::LeaseTimeToLiveResponse ttl_resp;
  ASSERT_TRUE(lease->LeaseTimeToLive(Ctx().get(), ttl, &ttl_resp).ok());
  etcdserverpb::LeaseLeasesResponse leases_resp;
  ASSERT_TRUE(
      lease->LeaseLeases(Ctx().get(), etcdserverpb::LeaseLeasesRequest(), &leases_resp).ok());
  {
    auto ctx = Ctx();
    auto stream = lease->LeaseKeepAlive(ctx.get());
    etcdserverpb::LeaseKeepAliveRequest ka;
    ka.set_id(grant_resp.id());
    ASSERT_TRUE(stream->Write(ka));
    etcdserverpb::LeaseKeepAliveResponse ka_resp;
    ASSERT_TRUE(stream->Read(&ka_resp));
    EXPECT_EQ(ka_resp.ttl(), 30);
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }
  etcdserverpb::LeaseRevokeRequest revoke;
  revoke.set_id(grant_resp.id());
  etcdserverpb::LeaseRevokeResponse revoke_resp;
  ASSERT_TRUE(lease->LeaseRevoke(Ctx().get(), revoke, &revoke_resp).ok());

  etcdserverpb::MemberListResponse list;
  ASSERT_TRUE(cluster->MemberList(Ctx().get(), etcdserverpb::MemberListRequest(), &list).ok());
  ASSERT_EQ(list.members_size(), 1);
  const uint64_t self = list.members(0).id();
  etcdserverpb::MemberAddRequest add;  // no peer URLs: refused, and counted
  etcdserverpb::MemberAddResponse add_resp;
  EXPECT_FALSE(cluster->MemberAdd(Ctx().get(), add, &add_resp).ok());
  etcdserverpb::MemberRemoveRequest remove;  // an unknown member
  remove.set_id(self + 1);
  etcdserverpb::MemberRemoveResponse remove_resp;
  EXPECT_FALSE(cluster->MemberRemove(Ctx().get(), remove, &remove_resp).ok());
  etcdserverpb::MemberUpdateRequest update;
  update.set_id(self + 1);
  update.add_peerurls("http://127.0.0.1:1");
  etcdserverpb::MemberUpdateResponse update_resp;
  EXPECT_FALSE(cluster->MemberUpdate(Ctx().get(), update, &update_resp).ok());
  etcdserverpb::MemberPromoteRequest promote;
  promote.set_id(self);  // not a learner
  etcdserverpb::MemberPromoteResponse promote_resp;
  EXPECT_FALSE(cluster->MemberPromote(Ctx().get(), promote, &promote_resp).ok());
  etcdserverpb::StatusResponse status;
  ASSERT_TRUE(maintenance->Status(Ctx().get(), etcdserverpb::StatusRequest(), &status).ok());
  etcdserverpb::MoveLeaderRequest move;
  move.set_targetid(self);
  etcdserverpb::MoveLeaderResponse move_resp;
  ASSERT_TRUE(maintenance->MoveLeader(Ctx().get(), move, &move_resp).ok());

  // Streams and the lock and election services.
  {
    auto watch = etcdserverpb::Watch::NewStub(channel_);
    auto ctx = Ctx();
    auto stream = watch->Watch(ctx.get());
    etcdserverpb::WatchRequest create;
    create.mutable_create_request()->set_key("w");
    ASSERT_TRUE(stream->Write(create));
    etcdserverpb::WatchResponse created;
    ASSERT_TRUE(stream->Read(&created));
    EXPECT_TRUE(created.created());
    stream->WritesDone();
    ctx->TryCancel();
    (void)stream->Finish();
  }
  ASSERT_TRUE(lease->LeaseGrant(Ctx().get(), grant, &grant_resp).ok());
  auto lock = v3lockpb::Lock::NewStub(channel_);
  v3lockpb::LockRequest lock_req;
  lock_req.set_name("l");
  lock_req.set_lease(grant_resp.id());
  v3lockpb::LockResponse lock_resp;
  ASSERT_TRUE(lock->Lock(Ctx().get(), lock_req, &lock_resp).ok());
  v3lockpb::UnlockRequest unlock_req;
  unlock_req.set_key(lock_resp.key());
  v3lockpb::UnlockResponse unlock_resp;
  ASSERT_TRUE(lock->Unlock(Ctx().get(), unlock_req, &unlock_resp).ok());
  auto election = v3electionpb::Election::NewStub(channel_);
  v3electionpb::CampaignRequest campaign;
  campaign.set_name("e");
  campaign.set_lease(grant_resp.id());
  campaign.set_value("a");
  v3electionpb::CampaignResponse campaign_resp;
  ASSERT_TRUE(election->Campaign(Ctx().get(), campaign, &campaign_resp).ok());
  v3electionpb::ProclaimRequest proclaim;
  *proclaim.mutable_leader() = campaign_resp.leader();
  proclaim.set_value("b");
  v3electionpb::ProclaimResponse proclaim_resp;
  ASSERT_TRUE(election->Proclaim(Ctx().get(), proclaim, &proclaim_resp).ok());
  v3electionpb::LeaderRequest leader_req;
  leader_req.set_name("e");
  v3electionpb::LeaderResponse leader_resp;
  ASSERT_TRUE(election->Leader(Ctx().get(), leader_req, &leader_resp).ok());
  EXPECT_EQ(leader_resp.kv().value(), "b");
  {
    auto ctx = Ctx();
    auto observe = election->Observe(ctx.get(), leader_req);
    v3electionpb::LeaderResponse observed;
    ASSERT_TRUE(observe->Read(&observed));
    EXPECT_EQ(observed.kv().value(), "b");
    ctx->TryCancel();
    (void)observe->Finish();
  }
  v3electionpb::ResignRequest resign;
  *resign.mutable_leader() = campaign_resp.leader();
  v3electionpb::ResignResponse resign_resp;
  ASSERT_TRUE(election->Resign(Ctx().get(), resign, &resign_resp).ok());

  const RequestGate& gate = client_server_->gate();
  // A stream is counted as finished once gRPC is done with it, just after the client sees it
  // end. The recipe services' in-process client (Observe runs on it) passes the gate too and
  // keeps its one shared Watch stream open while the server runs.
  EXPECT_TRUE(cairn::testing::PollUntil(
      [&] { return gate.Stats(Method::kObserve).in_flight() == 0; }, std::chrono::seconds(10)));
  EXPECT_TRUE(cairn::testing::PollUntil([&] { return gate.Stats(Method::kWatch).in_flight() <= 1; },
                                        std::chrono::seconds(10)));
  for (Method m : {Method::kWatch,           Method::kLock,
                   Method::kUnlock,          Method::kCampaign,
                   Method::kProclaim,        Method::kLeader,
                   Method::kObserve,         Method::kResign,
                   Method::kRange,           Method::kPut,
                   Method::kDeleteRange,     Method::kTxn,
                   Method::kCompact,         Method::kLeaseGrant,
                   Method::kLeaseRevoke,     Method::kLeaseKeepAlive,
                   Method::kLeaseTimeToLive, Method::kLeaseLeases,
                   Method::kMemberList,      Method::kMemberAdd,
                   Method::kMemberRemove,    Method::kMemberUpdate,
                   Method::kMemberPromote,   Method::kStatus,
                   Method::kMoveLeader}) {
    RequestGate::MethodStats s = gate.Stats(m);
    EXPECT_GE(s.admitted, 1u) << MethodName(m);
    if (m != Method::kWatch) {  // Watch: above
      EXPECT_EQ(s.in_flight(), 0) << MethodName(m);
    }
  }
  EXPECT_EQ(gate.Stats(Method::kPut).admitted, 2u);
  EXPECT_EQ(gate.Stats(Method::kPut).failed.at(absl::StatusCode::kInvalidArgument), 1u);
  EXPECT_EQ(gate.Stats(Method::kMemberAdd).failed.size(), 1u);
}

// The HTTP gateway's TLS client CN (metadata cairn-gateway-cn) is the user only when vouched for
// by the member's internal token (cairn-gateway-key): a remote gRPC client cannot claim a name.
TEST(AuthGateTest, GatewayCommonNameNeedsTheMembersKey) {
  char tmpl[] = "/tmp/cairn-gate-auth-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  {
    auto backend = storage::Backend::Open(dir + "/db");
    ASSERT_TRUE(backend.ok()) << backend.status();
    auth::AuthStore store(backend->get(), base::Clock::Real(), 10000);
    store.Load();
    cairnpb::InternalRequest r;
    auto apply = [&] {
      rocksdb::WriteBatch wb;
      absl::Status st = store.Apply(r, &wb);
      (*backend)->Write(&wb);
      return st;
    };
    r.mutable_auth_user_add()->set_name("root");
    r.mutable_auth_user_add()->set_hashedpassword("h");
    ASSERT_TRUE(apply().ok());
    r.Clear();
    r.mutable_auth_role_add()->set_name("root");
    ASSERT_TRUE(apply().ok());
    r.Clear();
    r.mutable_auth_user_grant_role()->set_user("root");
    r.mutable_auth_user_grant_role()->set_role("root");
    ASSERT_TRUE(apply().ok());
    r.Clear();
    r.mutable_auth_enable();
    ASSERT_TRUE(apply().ok());
    Caller forged;
    forged.cert_common_name = "root";
    forged.gateway_key = "guessed";
    auto user = UserOf(&store, forged);
    ASSERT_TRUE(user.ok()) << user.status();
    EXPECT_EQ(*user, "");  // nobody
    Caller gateway = forged;
    gateway.gateway_key = store.internal_token();
    user = UserOf(&store, gateway);
    ASSERT_TRUE(user.ok()) << user.status();
    EXPECT_EQ(*user, "root");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::api
