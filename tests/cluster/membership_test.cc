// Multi-member clusters: startup, linearizable reads on every member, membership changes
// (learner add, promote, remove, full restart, leader transfer) over gRPC and through etcdctl.
// Every test runs against etcd 3.4 (the reference) and cairn.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "tests/cluster/cluster_test_util.h"

namespace cairn::testing::cluster {
namespace {

class ClusterStartTest : public ::testing::TestWithParam<ServerKind> {
 protected:
  void StartPutReadEverywhere(int members) {
    auto cluster = ServerCluster::Start(FastOptions(GetParam(), members));
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    ServerCluster& c = **cluster;
    auto leader = WaitForLeader(c, kLeaderBoundMs);
    ASSERT_TRUE(leader.ok()) << leader.status();

    auto list = ListMembers(c.ClientEndpoint(0));
    ASSERT_TRUE(list.ok()) << list.status();
    EXPECT_EQ(list->members_size(), members) << list->ShortDebugString();
    std::vector<uint64_t> ids;
    for (int m = 0; m < members; ++m) {
      auto id = MemberId(c, m);
      ASSERT_TRUE(id.ok()) << id.status();
      ids.push_back(*id);
      bool listed = false;
      for (const auto& member : list->members()) {
        if (member.id() == *id) {
          listed = true;
          EXPECT_EQ(member.name(), c.Name(m));
          EXPECT_FALSE(member.islearner());
          ASSERT_EQ(member.peerurls_size(), 1);
          EXPECT_EQ(member.peerurls(0), c.PeerUrl(m));
          ASSERT_EQ(member.clienturls_size(), 1);
          EXPECT_EQ(member.clienturls(0), absl::StrCat("http://", c.ClientEndpoint(m)));
        }
      }
      EXPECT_TRUE(listed) << c.Name(m) << " id " << *id << " not in " << list->ShortDebugString();
    }
    // Every member reports the same cluster id.
    for (int m = 1; m < members; ++m) {
      auto a = MemberStatus(c.ClientEndpoint(0));
      auto b = MemberStatus(c.ClientEndpoint(m));
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(a->header().cluster_id(), b->header().cluster_id());
    }

    // A put through each member is seen at once by a linearizable read on every member.
    for (int writer = 0; writer < members; ++writer) {
      std::string key = absl::StrCat("start/", writer);
      auto put = PutKey(c.ClientEndpoint(writer), key, absl::StrCat("from-", writer));
      ASSERT_TRUE(put.ok()) << put.status();
      for (int reader = 0; reader < members; ++reader) {
        auto got = GetKey(c.ClientEndpoint(reader), key);
        ASSERT_TRUE(got.ok()) << got.status();
        ASSERT_EQ(got->kvs_size(), 1) << c.Name(reader) << " does not see " << key;
        EXPECT_EQ(got->kvs(0).value(), absl::StrCat("from-", writer));
        EXPECT_EQ(got->kvs(0).mod_revision(), put->header().revision());
        EXPECT_GE(got->header().revision(), put->header().revision());
      }
    }
    auto digest = WaitConverged(c, kConvergeBoundMs);
    ASSERT_TRUE(digest.ok()) << digest.status();
    EXPECT_EQ(digest->count, members);
  }
};

TEST_P(ClusterStartTest, ThreeMembersPutReadEverywhere) { StartPutReadEverywhere(3); }

TEST_P(ClusterStartTest, FiveMembersPutReadEverywhere) { StartPutReadEverywhere(5); }

INSTANTIATE_TEST_SUITE_P(Cluster, ClusterStartTest, ::testing::ValuesIn(TestedServerKinds()),
                         KindName);

class MembershipTest : public ::testing::TestWithParam<ServerKind> {};

// etcd 3.4 answers a MemberRemove of the member that serves it with "etcdserver: server stopped"
// when it stops before replying (a race in etcd; cairn always answers its own removal).
bool EtcdStoppedBeforeAnswering(absl::string_view error) {
  return absl::StrContains(error, "etcdserver: server stopped");
}

// Learner add + catch-up, promote, remove, restart of every member, leader transfer.
TEST_P(MembershipTest, LearnerPromoteRemoveRestartMoveLeader) {
  auto cluster = ServerCluster::Start(FastOptions(GetParam(), 3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  ASSERT_TRUE(WaitForLeader(c, kLeaderBoundMs).ok());
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(PutKey(c.ClientEndpoint(i % 3), absl::StrCat("pre/", i), "x").ok());
  }
  auto last = PutKey(c.ClientEndpoint(0), "pre/last", "last");
  ASSERT_TRUE(last.ok()) << last.status();

  // Add a learner: MemberAdd first, then start it with --initial-cluster-state existing.
  auto slot = c.PrepareMember();
  ASSERT_TRUE(slot.ok()) << slot.status();
  const int learner = *slot;
  auto added = AddMemberWhenHealthy(c.ClientEndpoint(1), c.PeerUrl(learner), /*learner=*/true);
  ASSERT_TRUE(added.ok()) << added.status();
  const uint64_t learner_id = added->member().id();
  EXPECT_NE(learner_id, 0u);
  EXPECT_TRUE(added->member().islearner());
  EXPECT_EQ(added->members_size(), 4);
  ASSERT_TRUE(c.StartAddedMember(learner).ok()) << c.LogTail(learner);

  // It catches up: a serializable read on it sees the data written before it joined.
  ASSERT_TRUE(PollUntil(
      [&] {
        auto got = GetKey(c.ClientEndpoint(learner), "pre/last", /*serializable=*/true);
        return got.ok() && got->kvs_size() == 1 && got->kvs(0).value() == "last";
      },
      std::chrono::milliseconds(kConvergeBoundMs)))
      << "learner did not catch up; log:\n"
      << c.LogTail(learner);
  auto status = MemberStatus(c.ClientEndpoint(learner));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->islearner());
  EXPECT_EQ(status->header().member_id(), learner_id);
  // etcd 3.4: a learner refuses linearizable reads ("etcdserver: rpc not supported for learner").
  auto linearizable = GetKey(c.ClientEndpoint(learner), "pre/last", /*serializable=*/false);
  EXPECT_FALSE(linearizable.ok());
  EXPECT_TRUE(absl::StrContains(linearizable.status().message(), "not supported for learner"))
      << linearizable.status();
  // ... and writes.
  auto learner_put = PutKey(c.ClientEndpoint(learner), "pre/learner", "x");
  EXPECT_FALSE(learner_put.ok());
  EXPECT_TRUE(absl::StrContains(learner_put.status().message(), "not supported for learner"))
      << learner_put.status();
  auto list = ListMembers(c.ClientEndpoint(0));
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->members_size(), 4);
  for (const auto& m : list->members()) {
    EXPECT_EQ(m.islearner(), m.id() == learner_id) << m.ShortDebugString();
    if (m.id() == learner_id) {
      EXPECT_EQ(m.name(), c.Name(learner));  // published once started
    }
  }

  // Promote through a follower, which forwards it to the leader (only the leader knows how far
  // the learner is); refused ("can only promote a learner member which is in sync with leader")
  // until it has caught up, so retry with a bound.
  absl::Status promote;
  ASSERT_TRUE(PollUntil(
      [&] {
        auto leader = WaitForLeader(c);
        if (!leader.ok()) return false;
        promote = PromoteMember(c.ClientEndpoint((*leader + 1) % 3), learner_id);
        return promote.ok();
      },
      std::chrono::milliseconds(kConvergeBoundMs), std::chrono::milliseconds(100)))
      << promote;
  // MemberList is served from the member's applied state (serializable, as etcd 3.4's): another
  // member shows the promotion once it has applied it.
  ASSERT_TRUE(PollUntil(
      [&] {
        list = ListMembers(c.ClientEndpoint(2));
        if (!list.ok()) return false;
        for (const auto& m : list->members()) {
          if (m.islearner()) return false;
        }
        return true;
      },
      std::chrono::milliseconds(kConvergeBoundMs)))
      << (list.ok() ? list->ShortDebugString() : list.status().ToString());
  ASSERT_TRUE(PollUntil(
      [&] {
        auto got = GetKey(c.ClientEndpoint(learner), "pre/last");
        return got.ok() && got->kvs_size() == 1;
      },
      std::chrono::milliseconds(kConvergeBoundMs)))
      << "promoted member does not serve linearizable reads";
  // Promoting a voter again is refused.
  EXPECT_FALSE(PromoteMember(c.ClientEndpoint(0), learner_id).ok());

  // Remove a voter that is not the leader (from another member's endpoint).
  auto leader = WaitForLeader(c, kLeaderBoundMs);
  ASSERT_TRUE(leader.ok()) << leader.status();
  int victim = -1;
  for (int m = 0; m < 3; ++m) {
    if (m != *leader) victim = m;
  }
  auto victim_id = MemberId(c, victim);
  ASSERT_TRUE(victim_id.ok());
  int other = (victim + 1) % c.size();
  // Retried while the strict reconfiguration check finds the cluster "unhealthy" (the promoted
  // member has not been connected for long enough).
  absl::Status removed = RemoveMemberWhenHealthy(c.ClientEndpoint(other), *victim_id);
  ASSERT_TRUE(removed.ok()) << removed;
  c.MarkRemoved(victim);
  list = ListMembers(c.ClientEndpoint(other));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->members_size(), 3);
  for (const auto& m : list->members()) EXPECT_NE(m.id(), *victim_id);
  // Removing it again: etcd answers "etcdserver: member not found".
  absl::Status again = RemoveMember(c.ClientEndpoint(other), *victim_id);
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(absl::StrContains(again.message(), "member not found")) << again;
  ASSERT_TRUE(PutKey(c.ClientEndpoint(learner), "post/remove", "y").ok());

  // Restart every remaining member at once; data and membership survive.
  auto before = WaitConverged(c, kConvergeBoundMs);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(c.RestartAll().ok());
  ASSERT_TRUE(WaitForLeader(c, kLeaderBoundMs).ok());
  auto after = WaitConverged(c, kConvergeBoundMs);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*before, *after) << DescribeDigest(*before) << " vs " << DescribeDigest(*after);
  list = ListMembers(c.ClientEndpoint(learner));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->members_size(), 3);

  // Move the leader to a chosen voter (MoveLeader is sent to the current leader).
  leader = WaitForLeader(c, kLeaderBoundMs);
  ASSERT_TRUE(leader.ok()) << leader.status();
  int target = -1;
  for (int m = 0; m < c.size(); ++m) {
    if (!c.IsRemoved(m) && m != *leader) target = m;
  }
  auto target_id = MemberId(c, target);
  ASSERT_TRUE(target_id.ok());
  ASSERT_TRUE(MoveLeader(c.ClientEndpoint(*leader), *target_id).ok());
  ASSERT_TRUE(PollUntil(
      [&] {
        auto now = WaitForLeader(c, 1000);
        return now.ok() && *now == target;
      },
      std::chrono::milliseconds(kLeaderBoundMs)));
  // MoveLeader sent to a follower is refused (etcd: "etcdserver: not leader").
  auto follower_id = MemberId(c, *leader);
  ASSERT_TRUE(follower_id.ok());
  absl::Status not_leader = MoveLeader(c.ClientEndpoint(*leader), *follower_id);
  EXPECT_FALSE(not_leader.ok());
  EXPECT_TRUE(absl::StrContains(not_leader.message(), "not leader")) << not_leader;
  EXPECT_TRUE(PutKey(c.ClientEndpoint(*leader), "post/move", "z").ok());
}

// MemberRemove sent to the very member being removed is answered with success, and that member
// then shuts down by itself. On cairn the leader stops replicating to a member as soon as its
// removal is in the log, so the member may never apply it: it learns of it from its peers, which
// refuse its raft streams as removed (etcd's peers do the same).
TEST_P(MembershipTest, MemberRemovedThroughItselfIsAnsweredAndStops) {
  auto cluster = ServerCluster::Start(FastOptions(GetParam(), 3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  auto leader = WaitForLeader(c, kLeaderBoundMs);
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int victim = (*leader + 1) % 3;
  const int survivor = (*leader + 2) % 3;
  auto victim_id = MemberId(c, victim);
  ASSERT_TRUE(victim_id.ok()) << victim_id.status();
  // Refused with "unhealthy cluster" until every member has been connected for 5 s.
  absl::Status removed = RemoveMemberWhenHealthy(c.ClientEndpoint(victim), *victim_id, 20000);
  // etcd 3.4 sometimes stops before it answers its own removal ("etcdserver: server stopped");
  // cairn always answers it. Either way the removal itself is checked below.
  if (!(GetParam() == ServerKind::kEtcd && EtcdStoppedBeforeAnswering(removed.message()))) {
    ASSERT_TRUE(removed.ok()) << removed;
  }
  auto exited = c.WaitExit(victim, kLeaderBoundMs);
  ASSERT_TRUE(exited.ok()) << exited.status() << "\n" << c.LogTail(victim);
  c.MarkRemoved(victim);

  auto list = ListMembers(c.ClientEndpoint(survivor));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->members_size(), 2) << list->ShortDebugString();
  for (const auto& m : list->members()) EXPECT_NE(m.id(), *victim_id);
  ASSERT_TRUE(PutKey(c.ClientEndpoint(survivor), "after/remove", "v", 15000).ok());
  auto got = GetKey(c.ClientEndpoint(*leader), "after/remove", false, 15000);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kvs_size(), 1);
}

// --strict-reconfig-check (on by default): a membership change the started and active members
// could not carry is refused with etcd's error; one they can carry goes through. A voter that is
// added but never started ("ghost") makes the refusals deterministic.
TEST_P(MembershipTest, StrictReconfigCheckRefusesChangesTheClusterCannotCarry) {
  auto cluster = ServerCluster::Start(FastOptions(GetParam(), 3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  auto leader = WaitForLeader(c, kLeaderBoundMs);
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int keep = *leader;  // m<keep> stays; the two others go
  const int first = (keep + 1) % 3, second = (keep + 2) % 3;
  auto first_id = MemberId(c, first);
  auto second_id = MemberId(c, second);
  ASSERT_TRUE(first_id.ok() && second_id.ok());

  // Four voters, three started: writes still have a quorum.
  auto ghost_slot = c.PrepareMember();
  ASSERT_TRUE(ghost_slot.ok()) << ghost_slot.status();
  auto ghost = AddMemberWhenHealthy(c.ClientEndpoint(keep), c.PeerUrl(*ghost_slot), false);
  ASSERT_TRUE(ghost.ok()) << ghost.status();
  const uint64_t ghost_id = ghost->member().id();
  ASSERT_TRUE(PutKey(c.ClientEndpoint(first), "strict/1", "v", 15000).ok());

  // Any addition needs every voter active: refused, through a follower and through the leader.
  auto spare_slot = c.PrepareMember();
  ASSERT_TRUE(spare_slot.ok()) << spare_slot.status();
  for (int via : {first, keep}) {
    for (bool learner : {true, false}) {
      auto refused = AddMember(c.ClientEndpoint(via), c.PeerUrl(*spare_slot), learner);
      ASSERT_FALSE(refused.ok()) << "learner=" << learner << " via m" << via;
      EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
      EXPECT_TRUE(absl::EndsWith(refused.status().message(), ": etcdserver: unhealthy cluster"))
          << refused.status();
    }
  }

  // Removing a started, active voter leaves {keep, first, ghost}: two started of three, enough.
  ASSERT_TRUE(RemoveMemberWhenHealthy(c.ClientEndpoint(first), *second_id).ok());
  c.MarkRemoved(second);
  // Removing another would leave {keep, ghost}: one started of two, not a quorum.
  // (etcd 3.4 answers this one with gRPC code UNKNOWN.)
  for (int via : {first, keep}) {
    absl::Status not_started = RemoveMember(c.ClientEndpoint(via), *first_id);
    EXPECT_EQ(not_started.code(), absl::StatusCode::kUnknown) << not_started;
    EXPECT_TRUE(
        absl::EndsWith(not_started.message(),
                       ": etcdserver: re-configuration failed due to not enough started members"))
        << not_started;
  }
  auto list = ListMembers(c.ClientEndpoint(keep));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->members_size(), 3) << list->ShortDebugString();

  // The ghost is not active, so removing it cannot cost the active quorum: allowed.
  ASSERT_TRUE(RemoveMemberWhenHealthy(c.ClientEndpoint(first), ghost_id).ok());
  c.MarkRemoved(*ghost_slot);
  // Two started, active voters: a learner may join now, and a learner may always go.
  auto learner = AddMemberWhenHealthy(c.ClientEndpoint(first), c.PeerUrl(*spare_slot), true);
  ASSERT_TRUE(learner.ok()) << learner.status();
  ASSERT_TRUE(RemoveMember(c.ClientEndpoint(keep), learner->member().id()).ok());
  c.MarkRemoved(*spare_slot);
  ASSERT_TRUE(PutKey(c.ClientEndpoint(first), "strict/2", "v", 15000).ok());
  auto got = GetKey(c.ClientEndpoint(keep), "strict/2", false, 15000);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kvs_size(), 1);
}

// --strict-reconfig-check=false lets the same refused addition through (both servers).
TEST_P(MembershipTest, WithoutStrictReconfigCheckAnInactiveVoterDoesNotBlockAdditions) {
  auto cluster =
      ServerCluster::Start(FastOptions(GetParam(), 3, {"--strict-reconfig-check=false"}));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  ASSERT_TRUE(WaitForLeader(c, kLeaderBoundMs).ok());
  auto ghost_slot = c.PrepareMember();
  ASSERT_TRUE(ghost_slot.ok()) << ghost_slot.status();
  auto ghost = AddMember(c.ClientEndpoint(0), c.PeerUrl(*ghost_slot), false);
  ASSERT_TRUE(ghost.ok()) << ghost.status();
  auto learner_slot = c.PrepareMember();
  ASSERT_TRUE(learner_slot.ok()) << learner_slot.status();
  auto learner = AddMember(c.ClientEndpoint(1), c.PeerUrl(*learner_slot), true);
  ASSERT_TRUE(learner.ok()) << learner.status();
  EXPECT_EQ(learner->members_size(), 5);
  ASSERT_TRUE(RemoveMember(c.ClientEndpoint(2), ghost->member().id()).ok());
  ASSERT_TRUE(RemoveMember(c.ClientEndpoint(2), learner->member().id()).ok());
  c.MarkRemoved(*ghost_slot);
  c.MarkRemoved(*learner_slot);
}

// A one-member cluster that also listens on its peer URL (so a member can be added), with a
// leader.
absl::StatusOr<std::unique_ptr<ServerCluster>> StartOneMemberToAddTo(ServerKind kind) {
  ClusterOptions options = FastOptions(kind, 1);
  options.peer_urls_always = true;
  auto cluster = ServerCluster::Start(options);
  if (!cluster.ok()) return cluster.status();
  auto leader = WaitForLeader(**cluster, kLeaderBoundMs);
  if (!leader.ok()) return leader.status();
  return cluster;
}

// Binds and listens on 127.0.0.1:<port>, as another process could between the harness picking a
// member's port and the member starting. Returns the socket (-1 on failure).
int SquatOnPort(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 1) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// The harness's own guard against a lost port race: a member added with MemberAdd whose client port
// was taken in the meantime starts on another client port and joins.
TEST_P(MembershipTest, AddedMemberWhoseClientPortIsTakenStartsOnAnother) {
  auto cluster = StartOneMemberToAddTo(GetParam());
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  auto slot = c.PrepareMember();
  ASSERT_TRUE(slot.ok()) << slot.status();
  const std::string picked = c.ClientEndpoint(*slot);
  int squatter = SquatOnPort(std::stoi(picked.substr(picked.rfind(':') + 1)));
  ASSERT_GE(squatter, 0) << std::strerror(errno);
  auto added = AddMember(c.ClientEndpoint(0), c.PeerUrl(*slot), /*learner=*/true);
  ASSERT_TRUE(added.ok()) << added.status();
  absl::Status started = c.StartAddedMember(*slot);
  close(squatter);
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_NE(c.ClientEndpoint(*slot), picked);
  // The first attempt really did fail on the taken port.
  EXPECT_TRUE(
      absl::StrContains(absl::AsciiStrToLower(c.LogTail(*slot, 1 << 16)), "address already in use"))
      << c.LogTail(*slot);
  auto got = GetKey(c.ClientEndpoint(*slot), "absent", /*serializable=*/true);
  ASSERT_TRUE(got.ok()) << got.status();
}

INSTANTIATE_TEST_SUITE_P(Cluster, MembershipTest, ::testing::ValuesIn(TestedServerKinds()),
                         KindName);

class EtcdctlClusterTest : public ::testing::TestWithParam<ServerKind> {};

TEST_P(EtcdctlClusterTest, MemberEndpointAndMoveLeaderCommands) {
  auto cluster = ServerCluster::Start(FastOptions(GetParam(), 3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  ASSERT_TRUE(WaitForLeader(c, kLeaderBoundMs).ok());
  const std::string urls = c.ClientUrls();

  CommandResult r = Etcdctl(urls, {"member", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  for (int m = 0; m < 3; ++m) {
    EXPECT_TRUE(absl::StrContains(r.out, absl::StrCat(", started, ", c.Name(m), ", ", c.PeerUrl(m),
                                                      ", http://", c.ClientEndpoint(m), ", false")))
        << r.out;
  }

  // member add --learner, start it, promote it.
  auto slot = c.PrepareMember();
  ASSERT_TRUE(slot.ok()) << slot.status();
  const int added = *slot;
  // Retried while etcd finds the just-started cluster "unhealthy" (see AddMemberWhenHealthy).
  PollUntil(
      [&] {
        r = Etcdctl(urls, {"member", "add", c.Name(added),
                           absl::StrCat("--peer-urls=", c.PeerUrl(added)), "--learner"});
        return r.exit_code == 0 || !absl::StrContains(r.err, "unhealthy cluster");
      },
      std::chrono::milliseconds(kLeaderBoundMs), std::chrono::milliseconds(200));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "added to cluster")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"")) << r.out;
  ASSERT_TRUE(c.StartAddedMember(added).ok()) << c.LogTail(added);
  auto added_id = MemberId(c, added);
  ASSERT_TRUE(added_id.ok()) << added_id.status();
  const std::string added_hex = absl::StrFormat("%x", *added_id);
  r = Etcdctl(urls, {"member", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, absl::StrCat(added_hex, ", started, ", c.Name(added))))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, ", true\n")) << "learner column: " << r.out;
  ASSERT_TRUE(PollUntil(
      [&] {
        r = Etcdctl(urls, {"member", "promote", added_hex});
        return r.exit_code == 0;
      },
      std::chrono::milliseconds(kConvergeBoundMs), std::chrono::milliseconds(200)))
      << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "promoted")) << r.out;

  // member update (same peer URL: accepted).
  r = Etcdctl(urls,
              {"member", "update", added_hex, absl::StrCat("--peer-urls=", c.PeerUrl(added))});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "updated in cluster")) << r.out;

  // endpoint status / health over the whole cluster (--cluster discovers the members' URLs).
  const std::string all_urls = absl::StrCat(urls, ",http://", c.ClientEndpoint(added));
  r = Etcdctl(urls, {"endpoint", "status", "--cluster", "-w", "table"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  for (int m = 0; m < c.size(); ++m) {
    EXPECT_TRUE(absl::StrContains(r.out, absl::StrCat("http://", c.ClientEndpoint(m)))) << r.out;
  }
  EXPECT_TRUE(absl::StrContains(r.out, "IS LEADER")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, " true |")) << "no leader in: " << r.out;
  r = Etcdctl(urls, {"endpoint", "health", "--cluster"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  for (int m = 0; m < c.size(); ++m) {
    // etcdctl prints health lines on stderr.
    EXPECT_TRUE(absl::StrContains(r.out + r.err,
                                  absl::StrCat("http://", c.ClientEndpoint(m), " is healthy")))
        << Describe(r);
  }

  // move-leader to a chosen follower.
  auto leader = WaitForLeader(c, kLeaderBoundMs);
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int target = (*leader + 1) % c.size();
  auto target_id = MemberId(c, target);
  ASSERT_TRUE(target_id.ok());
  r = Etcdctl(all_urls, {"move-leader", absl::StrFormat("%x", *target_id)});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "Leadership transferred")) << r.out;
  ASSERT_TRUE(PollUntil(
      [&] {
        auto now = WaitForLeader(c, 1000);
        return now.ok() && *now == target;
      },
      std::chrono::milliseconds(kLeaderBoundMs)));

  // member remove of a follower.
  int victim = (target + 1) % c.size();
  auto victim_id = MemberId(c, victim);
  ASSERT_TRUE(victim_id.ok());
  PollUntil(
      [&] {
        r = Etcdctl(urls, {"member", "remove", absl::StrFormat("%x", *victim_id)});
        return r.exit_code == 0 || !absl::StrContains(r.err, "unhealthy cluster");
      },
      std::chrono::milliseconds(kLeaderBoundMs), std::chrono::milliseconds(200));
  // Sent to the victim itself, etcd 3.4 sometimes stops before it answers (see
  // MemberRemovedThroughItselfIsAnsweredAndStops); the member list below checks the removal.
  if (!(GetParam() == ServerKind::kEtcd && EtcdStoppedBeforeAnswering(r.err))) {
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_TRUE(absl::StrContains(r.out, "removed from cluster")) << r.out;
  }
  c.MarkRemoved(victim);
  r = Etcdctl(absl::StrCat("http://", c.ClientEndpoint(target)), {"member", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_FALSE(absl::StrContains(r.out, absl::StrFormat("%x,", *victim_id))) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;
}

// etcdctl member add of a voter to a one-member cluster: etcd accepts it (its strict reconfig
// check lets a lone started member add a second one), the cluster waits for the new member, and
// works again once it runs. cairn once answered "etcdserver: no leader" here (the change needed
// the unstarted member's vote to commit; docs/raft.md rule 1a).
TEST_P(EtcdctlClusterTest, MemberAddVoterToOneMemberCluster) {
  auto cluster = StartOneMemberToAddTo(GetParam());
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  ASSERT_TRUE(PutKey(c.ClientEndpoint(0), "before", "1").ok());
  auto slot = c.PrepareMember();
  ASSERT_TRUE(slot.ok()) << slot.status();
  const int added = *slot;
  const std::string url0 = absl::StrCat("http://", c.ClientEndpoint(0));
  CommandResult r = Etcdctl(
      url0, {"member", "add", c.Name(added), absl::StrCat("--peer-urls=", c.PeerUrl(added))});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "added to cluster")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"")) << r.out;
  // Listed, not started yet, not a learner.
  r = Etcdctl(url0, {"member", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(
      absl::StrContains(r.out, absl::StrCat(", unstarted, , ", c.PeerUrl(added), ", , false")))
      << r.out;

  ASSERT_TRUE(c.StartAddedMember(added).ok()) << c.LogTail(added);
  ASSERT_TRUE(WaitForLeader(c, kLeaderBoundMs).ok());
  ASSERT_TRUE(PutKey(c.ClientEndpoint(added), "after", "2", 15000).ok()) << c.LogTail(added);
  auto got = GetKey(c.ClientEndpoint(0), "before", false, 15000);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kvs_size(), 1);
  auto digest = WaitConverged(c, kConvergeBoundMs);
  ASSERT_TRUE(digest.ok()) << digest.status();
  auto list = ListMembers(c.ClientEndpoint(0));
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->members_size(), 2);
  for (const auto& m : list->members()) {
    EXPECT_FALSE(m.islearner());
    EXPECT_FALSE(m.name().empty()) << "not started: " << m.ShortDebugString();
  }
}

INSTANTIATE_TEST_SUITE_P(Cluster, EtcdctlClusterTest, ::testing::ValuesIn(TestedServerKinds()),
                         KindName);

}  // namespace
}  // namespace cairn::testing::cluster
