// Cluster, Maintenance and Auth calls, endpoint sync and failover on a 3-member cluster.
#include <atomic>
#include <filesystem>

#include <gtest/gtest.h>

#include "tests/client/client_test_util.h"

namespace cairn::client_test {
namespace {

class AdminTest : public ClusterTest {};
// Maintenance calls run against both servers (cairn serves them since issue 15).
class MaintenanceCallsTest : public ClusterTest {};
// The SDK's auth calls and its token refresh (unary calls and a watch across invalidated tokens),
// against etcd and cairn.
class AdminAuthTest : public ClusterTest {};

TEST_P(MaintenanceCallsTest, MaintenanceCalls) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto m = client->maintenance();
  ASSERT_TRUE(client->kv().Put("k", "v").ok());
  auto alarms = m.Alarm(AlarmAction::kGet);
  ASSERT_TRUE(alarms.ok()) << alarms.status();
  EXPECT_TRUE(alarms->alarms.empty());
  auto defrag = m.Defragment(cluster_->ClientEndpoint(0));
  ASSERT_TRUE(defrag.ok()) << defrag.status();
  auto hash = m.Hash();
  ASSERT_TRUE(hash.ok()) << hash.status();
  auto hkv = m.HashKv("", 0);
  ASSERT_TRUE(hkv.ok()) << hkv.status();
  auto hkv2 = m.HashKv(cluster_->ClientEndpoint(0), 0);
  ASSERT_TRUE(hkv2.ok());
  EXPECT_EQ(hkv->hash, hkv2->hash);

  std::string dir = ::testing::TempDir() + "/cairn_snapshot_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::string path = dir + "/snap.db";
  auto snap = m.Snapshot(path);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->sha256_hex.size(), 64u);
  EXPECT_EQ(std::filesystem::file_size(path), snap->bytes);
  EXPECT_FALSE(std::filesystem::exists(path + ".part"));
  if (GetParam() == ServerKind::kEtcd) {
    // etcd's own tool accepts the file (it checks the trailing hash too). A cairn snapshot is
    // not a bbolt file, which `snapshot status` opens (docs/maintenance.md).
    auto status = cairn::testing::RunCommand(
        {cairn::testing::EtcdctlPath(), "snapshot", "status", path, "-w", "json"});
    EXPECT_EQ(status.exit_code, 0) << status.err;
  } else {
    EXPECT_EQ(snap->bytes % 512, 32u);  // etcd's rule: whole pages + the sha256
  }
  std::filesystem::remove_all(dir);
}

TEST_P(AdminAuthTest, AuthUsersRolesAndTokenRefresh) {
  // Three members: the harness cannot restart a member once auth is on (its readiness probe has
  // no credentials), so the watch stream is broken by killing its member instead.
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  auto admin = Connect();
  ASSERT_NE(admin, nullptr);
  auto auth = admin->auth();
  ASSERT_TRUE(auth.UserAdd("root", "rootpw").ok());
  auto role = auth.RoleAdd("root");
  ASSERT_TRUE(role.ok() || ErrorKindOf(role.status()) == ErrorKind::kRoleAlreadyExists);
  ASSERT_TRUE(auth.UserGrantRole("root", "root").ok());
  ASSERT_TRUE(auth.UserAdd("alice", "alicepw").ok());
  ASSERT_TRUE(auth.RoleAdd("app").ok());
  Permission perm;
  perm.type = PermissionType::kReadWrite;
  perm.key = "app/";
  perm.range_end = PrefixEnd("app/");
  ASSERT_TRUE(auth.RoleGrantPermission("app", perm).ok());
  ASSERT_TRUE(auth.UserGrantRole("alice", "app").ok());
  auto rg = auth.RoleGet("app");
  ASSERT_TRUE(rg.ok());
  ASSERT_EQ(rg->permissions.size(), 1u);
  EXPECT_EQ(rg->permissions[0].key, "app/");
  auto users = auth.UserList();
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users->names.size(), 2u);
  auto ug = auth.UserGet("alice");
  ASSERT_TRUE(ug.ok());
  EXPECT_EQ(ug->roles, std::vector<std::string>{"app"});
  ASSERT_TRUE(auth.AuthEnable().ok());

  // Without credentials every call is rejected now.
  auto anon = admin->kv().Get("app/x");
  EXPECT_EQ(ErrorKindOf(anon.status()), ErrorKind::kUserEmpty) << anon.status();

  ClientOptions ro = OptionsFor(*cluster_);
  ro.username = "root";
  ro.password = "rootpw";
  auto root = Connect(ro);
  ASSERT_NE(root, nullptr);
  ClientOptions ao = OptionsFor(*cluster_);
  ao.username = "alice";
  ao.password = "alicepw";
  auto alice = Connect(ao);
  ASSERT_NE(alice, nullptr);
  ASSERT_TRUE(alice->kv().Put("app/x", "1").ok());
  auto denied = alice->kv().Put("other", "1");
  EXPECT_EQ(ErrorKindOf(denied.status()), ErrorKind::kPermissionDenied) << denied.status();

  WatchLog log;
  WatchOptions wo;
  wo.prefix = true;
  auto w = alice->watch().Watch("app/", wo, log.Callback());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->WaitCreated(In(std::chrono::milliseconds(20000))).ok());

  // Changing a password invalidates the user's tokens (etcd's simple tokens): the client must
  // re-authenticate transparently, for unary calls and for the watch stream after a restart.
  ASSERT_TRUE(root->auth().UserChangePassword("alice", "alicepw").ok());
  auto after = alice->kv().Put("app/y", "2");
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_TRUE(log.WaitEvents(1));
  ASSERT_TRUE(root->auth().UserChangePassword("alice", "alicepw").ok());
  std::string current = alice->current_endpoint();
  for (int i = 0; i < cluster_->size(); ++i) {
    if (cluster_->ClientEndpoint(i) == current) cluster_->Kill(i);
  }
  CallOptions idempotent;
  idempotent.retry = RetryMode::kIdempotent;
  ASSERT_TRUE(root->kv().Put("app/z", "3", {}, idempotent).ok());
  ASSERT_TRUE(log.WaitEvents(2));
  auto ev = log.events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kv.key, "app/y");
  EXPECT_EQ(ev[1].kv.key, "app/z");
  EXPECT_FALSE((*w)->done());

  auto st = root->auth().AuthStatus();
  if (st.status().code() != absl::StatusCode::kUnimplemented) {  // AuthStatus is etcd 3.5+
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_TRUE(st->enabled);
  }
  ASSERT_TRUE(root->auth().AuthDisable(idempotent).ok());
}

// etcd #13413: a watch and a lease keepalive opened with a token keep working after the token
// expired (--auth-token-ttl 1) and their streams had to be reopened on another member.
TEST_P(AdminAuthTest, WatchAndKeepAliveSurviveTokenExpiry) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3, {"--auth-token-ttl", "1", "--bcrypt-cost", "4"}));
  auto admin = Connect();
  ASSERT_NE(admin, nullptr);
  auto auth = admin->auth();
  ASSERT_TRUE(auth.UserAdd("root", "rootpw").ok());
  auto role = auth.RoleAdd("root");
  ASSERT_TRUE(role.ok() || ErrorKindOf(role.status()) == ErrorKind::kRoleAlreadyExists);
  ASSERT_TRUE(auth.UserGrantRole("root", "root").ok());
  ASSERT_TRUE(auth.UserAdd("alice", "alicepw").ok());
  ASSERT_TRUE(auth.RoleAdd("app").ok());
  Permission perm;
  perm.type = PermissionType::kReadWrite;
  perm.key = "app/";
  perm.range_end = PrefixEnd("app/");
  ASSERT_TRUE(auth.RoleGrantPermission("app", perm).ok());
  ASSERT_TRUE(auth.UserGrantRole("alice", "app").ok());
  ASSERT_TRUE(auth.AuthEnable().ok());

  ClientOptions ao = OptionsFor(*cluster_);
  ao.username = "alice";
  ao.password = "alicepw";
  auto alice = Connect(ao);
  ASSERT_NE(alice, nullptr);
  WatchLog log;
  WatchOptions wo;
  wo.prefix = true;
  auto w = alice->watch().Watch("app/", wo, log.Callback());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->WaitCreated(In(std::chrono::milliseconds(20000))).ok());
  auto grant = alice->lease().Grant(3);
  ASSERT_TRUE(grant.ok()) << grant.status();
  std::atomic<int> renewals{0};
  KeepAliveOptions ko;
  ko.on_renewed = [&](int64_t) { renewals.fetch_add(1); };
  auto ka = alice->lease().KeepAlive(grant->id, ko);
  ASSERT_NE(ka, nullptr);
  // Three keepalives (one per TTL/3 = 1 s) take longer than the token's 1 s TTL (+1 s of etcd's
  // expiry resolution), and the streams do not use the token after they opened: it expired.
  ASSERT_TRUE(PollUntil([&] { return renewals.load() >= 3; }, std::chrono::seconds(30)));
  std::string current = alice->current_endpoint();
  for (int i = 0; i < cluster_->size(); ++i) {
    if (cluster_->ClientEndpoint(i) == current) cluster_->Kill(i);
  }
  ClientOptions ro = OptionsFor(*cluster_);
  ro.username = "root";
  ro.password = "rootpw";
  auto root = Connect(ro);
  ASSERT_NE(root, nullptr);
  CallOptions idempotent;
  idempotent.retry = RetryMode::kIdempotent;
  ASSERT_TRUE(root->kv().Put("app/after", "1", {}, idempotent).ok());
  ASSERT_TRUE(log.WaitEvents(1));
  EXPECT_EQ(log.events()[0].kv.key, "app/after");
  int before = renewals.load();
  ASSERT_TRUE(PollUntil([&] { return renewals.load() >= before + 2; }, std::chrono::seconds(30)))
      << ka->status();
  EXPECT_FALSE(ka->lost()) << ka->status();
  EXPECT_FALSE((*w)->done());
}

TEST_P(AdminTest, ThreeMembersSyncFailoverMoveLeader) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  ClientOptions o = OptionsFor(*cluster_);
  o.endpoints = {cluster_->ClientEndpoint(0)};
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Sync().ok());
  EXPECT_EQ(client->endpoints().size(), 3u);
  // The same through the periodic auto-sync.
  o.auto_sync_interval = std::chrono::milliseconds(100);
  auto synced = Connect(o);
  ASSERT_NE(synced, nullptr);
  EXPECT_TRUE(PollUntil([&] { return synced->endpoints().size() == 3u; }));

  auto members = client->cluster().MemberList();
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->members.size(), 3u);
  auto st = client->maintenance().Status();
  ASSERT_TRUE(st.ok());
  MemberId leader = st->leader;
  MemberId target = 0;
  for (const auto& mem : members->members) {
    if (mem.id != leader) target = mem.id;
  }
  // MoveLeader must reach the leader: try every endpoint.
  bool moved = false;
  for (const auto& ep : cluster_->ClientEndpoints()) {
    if (client->maintenance().MoveLeader(target, ep).ok()) moved = true;
  }
  EXPECT_TRUE(moved);
  ASSERT_TRUE(PollUntil([&] {
    auto s = client->maintenance().Status();
    return s.ok() && s->leader == target;
  }));

  // Kill the current endpoint's member: reads and writes continue on the others.
  std::string current = client->current_endpoint();
  for (int i = 0; i < cluster_->size(); ++i) {
    if (cluster_->ClientEndpoint(i) == current) cluster_->Kill(i);
  }
  auto get = client->kv().Get("k");
  ASSERT_TRUE(get.ok()) << get.status();
  // The cluster may be electing a new leader: declare the put idempotent so that it is retried.
  CallOptions idempotent;
  idempotent.retry = RetryMode::kIdempotent;
  auto put = client->kv().Put("k", "after-kill", {}, idempotent);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_NE(client->current_endpoint(), current);

  auto bad = client->cluster().MemberRemove(12345);
  EXPECT_EQ(ErrorKindOf(bad.status()), ErrorKind::kMemberNotFound) << bad.status();
}

INSTANTIATE_TEST_SUITE_P(Servers, AdminTest, ::testing::ValuesIn(EtcdOnly()), KindName);
INSTANTIATE_TEST_SUITE_P(Servers, MaintenanceCallsTest, ::testing::ValuesIn(CairnServedKinds()),
                         KindName);
INSTANTIATE_TEST_SUITE_P(Servers, AdminAuthTest, ::testing::ValuesIn(CairnServedKinds()), KindName);

}  // namespace
}  // namespace cairn::client_test
