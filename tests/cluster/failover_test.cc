// Failures in multi-member clusters: leader kill under concurrent load, a member down while the
// others write and compact (catch-up by snapshot), linearizable reads across leader changes, and a
// paused (SIGSTOP) leader that must never serve a stale linearizable read. Against etcd and cairn.
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/cluster/cluster_test_util.h"

namespace cairn::testing::cluster {
namespace {

class FailoverTest : public ::testing::TestWithParam<ServerKind> {};

// kill -9 of the leader while writers hit every member: a new leader is elected, the killed member
// rejoins, and every acknowledged write is on every member with identical content.
TEST_P(FailoverTest, LeaderKillUnderLoadLosesNoAcknowledgedWrite) {
  auto cluster = ServerCluster::Start(FastOptions(GetParam(), 3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  auto leader = WaitForLeader(c, kLeaderBoundMs);
  ASSERT_TRUE(leader.ok()) << leader.status();

  WriteLoad load(c.ClientEndpoints(), /*threads=*/6, "load/");
  ASSERT_TRUE(load.WaitForAcks(300, 60000)) << "writes not acknowledged in time";
  c.Kill(*leader);
  size_t at_kill = load.AckCount();
  auto new_leader = WaitForLeader(c, kLeaderBoundMs, {*leader});
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  EXPECT_NE(*new_leader, *leader);
  // The surviving majority keeps acknowledging writes.
  ASSERT_TRUE(load.WaitForAcks(at_kill + 300, 60000))
      << "no progress after the leader kill: " << load.AckCount() << " acks";
  load.Stop();

  ASSERT_TRUE(c.Restart(*leader).ok()) << c.LogTail(*leader);
  auto digest = WaitConverged(c, kConvergeBoundMs);
  ASSERT_TRUE(digest.ok()) << digest.status();
  auto acked = load.Acked();
  SCOPED_TRACE(absl::StrCat(acked.size(), " acknowledged puts, ", load.Failures(),
                            " failed, converged at ", DescribeDigest(*digest)));
  int64_t max_rev = 0;
  for (const auto& [key, ack] : acked) max_rev = std::max(max_rev, ack.revision);
  EXPECT_GE(digest->revision, max_rev);
  ExpectAckedEverywhere(c, "load/", acked);
  ASSERT_TRUE(WaitForLeader(c, kLeaderBoundMs).ok());
}

// A member is down while 10,000+ writes and a compaction happen; with --snapshot-count 1000 the
// leader has compacted its log and must send a snapshot. Restarted, it catches up to the same
// revision and content, and knows about the compaction.
TEST_P(FailoverTest, DownMemberCatchesUpAfterManyWritesAndCompaction) {
  auto cluster = ServerCluster::Start(FastOptions(GetParam(), 3, {"--snapshot-count", "1000"}));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  auto leader = WaitForLeader(c, kLeaderBoundMs);
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int down = (*leader + 1) % 3;
  ASSERT_TRUE(PutKey(c.ClientEndpoint(down), "lag/before", "b").ok());
  c.Kill(down);
  std::vector<std::string> up;
  for (int m = 0; m < 3; ++m) {
    if (m != down) up.push_back(c.ClientEndpoint(m));
  }

  // 10,000 single puts (each its own Raft entry, so the log passes several snapshots) over many
  // concurrent clients, overwriting a key space of 2,000 keys, plus txns of 100 puts each.
  constexpr int kThreads = 16;
  constexpr int kPutsPerThread = 625;
  std::atomic<int> failed{0};
  std::mutex failure_mu;
  std::string first_failure;  // which writer, which put, which status: for the assertion
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      auto channel = MakeConnectedTestChannel(up[t % up.size()]);
      if (channel == nullptr) {
        ++failed;
        std::lock_guard<std::mutex> lock(failure_mu);
        if (first_failure.empty()) first_failure = absl::StrCat("writer ", t, ": no connection");
        return;
      }
      auto stub = etcdserverpb::KV::NewStub(channel);
      for (int i = 0; i < kPutsPerThread; ++i) {
        etcdserverpb::PutRequest request;
        request.set_key(absl::StrCat("lag/k", (t * kPutsPerThread + i) % 2000));
        request.set_value(absl::StrCat("v", t, "-", i));
        etcdserverpb::PutResponse response;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::Status status = stub->Put(&context, request, &response);
        if (status.ok()) continue;
        ++failed;
        std::lock_guard<std::mutex> lock(failure_mu);
        if (first_failure.empty()) {
          first_failure = absl::StrCat("writer ", t, " to ", up[t % up.size()], ", put ", i, ": ",
                                       status.error_code(), " ", status.error_message());
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_EQ(failed.load(), 0) << "first failure: " << first_failure;
  auto kv = etcdserverpb::KV::NewStub(MakeTestChannel(up[0]));
  int64_t mid_revision = 0;
  for (int batch = 0; batch < 20; ++batch) {
    etcdserverpb::TxnRequest txn;
    for (int i = 0; i < 100; ++i) {
      auto* put = txn.add_success()->mutable_request_put();
      put->set_key(absl::StrCat("lag/t", batch, "/", i));
      put->set_value(absl::StrCat("t", batch));
    }
    etcdserverpb::TxnResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = kv->Txn(&context, txn, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_TRUE(response.succeeded());
    if (batch == 10) mid_revision = response.header().revision();
  }
  {
    etcdserverpb::CompactionRequest request;
    request.set_revision(mid_revision);
    request.set_physical(true);
    etcdserverpb::CompactionResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = kv->Compact(&context, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  auto last = PutKey(up[1], "lag/after", "a");
  ASSERT_TRUE(last.ok()) << last.status();

  ASSERT_TRUE(c.Restart(down).ok()) << c.LogTail(down);
  auto digest = WaitConverged(c, kConvergeBoundMs);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(digest->revision, last->header().revision());
  EXPECT_EQ(digest->count, 2000 + 20 * 100 + 2);
  for (int m = 0; m < 3; ++m) {
    // Reads below the compaction are refused everywhere, reads at it answer the same.
    auto below = KvContentDigest(c.ClientEndpoint(m), mid_revision - 1);
    EXPECT_FALSE(below.ok()) << c.Name(m);
    EXPECT_TRUE(absl::StrContains(below.status().message(), "compacted")) << below.status();
    auto at = KvContentDigest(c.ClientEndpoint(m), mid_revision);
    ASSERT_TRUE(at.ok()) << c.Name(m) << ": " << at.status();
    auto reference = KvContentDigest(up[0], mid_revision);
    ASSERT_TRUE(reference.ok());
    EXPECT_EQ(*at, *reference) << c.Name(m);
  }
  auto got = GetKey(c.ClientEndpoint(down), "lag/after");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs_size(), 1);
}

// A write acknowledged by one member is always seen by a linearizable read on another, over many
// rounds, with leader transfers and a leader kill/restart in between. Reads may fail while there
// is no leader; a read that answers must not be stale.
TEST_P(FailoverTest, LinearizableReadsAcrossLeaderChanges) {
  auto cluster = ServerCluster::Start(FastOptions(GetParam(), 3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  ASSERT_TRUE(WaitForLeader(c, kLeaderBoundMs).ok());
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (int m = 0; m < 3; ++m) {
    stubs.push_back(etcdserverpb::KV::NewStub(MakeTestChannel(c.ClientEndpoint(m))));
  }
  constexpr int kRounds = 200;
  int killed = -1;
  int stale = 0;
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0 && round % 50 == 0) {
      auto leader = WaitForLeader(c, kLeaderBoundMs);
      ASSERT_TRUE(leader.ok()) << leader.status();
      if (round == 100) {
        c.Kill(*leader);  // rounds 100..149 run on two members
        killed = *leader;
      } else {
        if (killed >= 0) {
          ASSERT_TRUE(c.Restart(killed).ok()) << c.LogTail(killed);
          killed = -1;
          leader = WaitForLeader(c, kLeaderBoundMs);
          ASSERT_TRUE(leader.ok()) << leader.status();
        }
        int target = (*leader + 1) % 3;
        auto target_id = MemberId(c, target);
        ASSERT_TRUE(target_id.ok());
        absl::Status moved = MoveLeader(c.ClientEndpoint(*leader), *target_id);
        ASSERT_TRUE(moved.ok()) << moved;
      }
    }
    // Write through one member (retrying with the next key suffix on failure: an ambiguous put
    // is never repeated with the same value).
    int writer = round % 3;
    if (writer == killed) writer = (writer + 1) % 3;
    int reader = (writer + 1) % 3;
    if (reader == killed) reader = (reader + 1) % 3;
    std::string value;
    int64_t acked_revision = 0;
    ASSERT_TRUE(PollUntil(
        [&, attempt = 0]() mutable {
          value = absl::StrCat("round-", round, "-", attempt++);
          etcdserverpb::PutRequest request;
          request.set_key("lin");
          request.set_value(value);
          etcdserverpb::PutResponse response;
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
          if (!stubs[writer]->Put(&context, request, &response).ok()) return false;
          acked_revision = response.header().revision();
          return true;
        },
        std::chrono::milliseconds(kLeaderBoundMs)))
        << "round " << round << ": no put acknowledged by " << c.Name(writer);
    bool answered = PollUntil(
        [&] {
          etcdserverpb::RangeRequest request;
          request.set_key("lin");
          etcdserverpb::RangeResponse response;
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
          if (!stubs[reader]->Range(&context, request, &response).ok()) return false;
          if (response.kvs_size() != 1 || response.kvs(0).value() != value ||
              response.kvs(0).mod_revision() != acked_revision) {
            ++stale;
            ADD_FAILURE() << "round " << round << ": " << c.Name(reader)
                          << " answered a stale read after " << c.Name(writer) << " acked " << value
                          << "@" << acked_revision << ": " << response.ShortDebugString();
          }
          return true;
        },
        std::chrono::milliseconds(kLeaderBoundMs));
    ASSERT_TRUE(answered) << "round " << round << ": " << c.Name(reader) << " never answered";
    if (stale > 0) break;
  }
  if (killed >= 0) {
    ASSERT_TRUE(c.Restart(killed).ok());
  }
  auto digest = WaitConverged(c, kConvergeBoundMs);
  ASSERT_TRUE(digest.ok()) << digest.status();
}

// A leadership transfer is invisible to clients. Right after each MoveLeader, one put and one
// linearizable read are sent, once each and without retry, to every member: the old leader knows
// no leader until the new one's first message reaches it, and a request meeting a member without
// a leader must wait for one (as etcd's raft node holds proposals), not fail with "no leader".
// On cairn a conf change (MemberUpdate) sent at once to the old leader must also succeed; etcd
// 3.4 silently drops a conf change that reaches a leader before its first entry commits (the
// client times out), so that part is cairn's alone.
TEST_P(FailoverTest, RequestsRightAfterLeaderTransferSucceedOnEveryMember) {
  auto cluster = ServerCluster::Start(FastOptions(GetParam(), 3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    auto leader = WaitForLeader(c, kLeaderBoundMs);
    ASSERT_TRUE(leader.ok()) << leader.status();
    const int old_leader = *leader;
    const int target = (old_leader + 1) % 3;
    auto target_id = MemberId(c, target);
    ASSERT_TRUE(target_id.ok()) << target_id.status();
    auto old_id = MemberId(c, old_leader);
    ASSERT_TRUE(old_id.ok()) << old_id.status();
    absl::Status moved = MoveLeader(c.ClientEndpoint(old_leader), *target_id);
    ASSERT_TRUE(moved.ok()) << moved;

    if (GetParam() == ServerKind::kCairn) {
      auto stub = etcdserverpb::Cluster::NewStub(MakeTestChannel(c.ClientEndpoint(old_leader)));
      etcdserverpb::MemberUpdateRequest request;
      request.set_id(*old_id);
      request.add_peerurls(c.PeerUrl(old_leader));
      etcdserverpb::MemberUpdateResponse response;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
      grpc::Status st = stub->MemberUpdate(&context, request, &response);
      EXPECT_TRUE(st.ok()) << "MemberUpdate on the old leader: " << st.error_message();
    }
    // The old leader first: it is the member most likely to be between leaders.
    for (int i = 0; i < 3; ++i) {
      const int m = (old_leader + i) % 3;
      const std::string value = absl::StrCat("round-", round, "-via-", m);
      auto put = PutKey(c.ClientEndpoint(m), "transfer/k", value, 15000);
      ASSERT_TRUE(put.ok()) << "put via " << c.Name(m) << ": " << put.status();
      auto got = GetKey(c.ClientEndpoint((m + 1) % 3), "transfer/k", false, 15000);
      ASSERT_TRUE(got.ok()) << "read via " << c.Name((m + 1) % 3) << ": " << got.status();
      ASSERT_EQ(got->kvs_size(), 1);
      EXPECT_EQ(got->kvs(0).value(), value);
      EXPECT_EQ(got->kvs(0).mod_revision(), put->header().revision());
    }
  }
}

// A member cut off from the majority answers writes and linearizable reads with an Unavailable
// error within bounded time (cairn: "no leader" once its leader wait is over; etcd: "request timed
// out"), never a hang; serializable reads keep working. With the majority back, it serves again.
TEST_P(FailoverTest, MinorityMemberFailsRequestsThenRecovers) {
  auto cluster = ServerCluster::Start(FastOptions(GetParam(), 3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  ASSERT_TRUE(WaitForLeader(c, kLeaderBoundMs).ok());
  ASSERT_TRUE(PutKey(c.ClientEndpoint(0), "minority/k", "before", 15000).ok());
  ASSERT_TRUE(PollUntil(
      [&] {
        auto got = GetKey(c.ClientEndpoint(2), "minority/k", /*serializable=*/true);
        return got.ok() && got->kvs_size() == 1;
      },
      std::chrono::milliseconds(kConvergeBoundMs)));
  c.Kill(0);
  c.Kill(1);

  // The client's deadline is far beyond the server's own bound (etcd: 5 s + 2 election timeouts;
  // cairn's leader wait: 2 election timeouts + 1 s): the answer must come from the server.
  constexpr int kClientDeadlineMs = 30000;
  // The first put may still be forwarded to the dead leader (the survivor has not yet noticed it
  // is gone) and time out; later requests meet a member that knows it has no leader. Each answer
  // must be the server's (never the client's own DEADLINE_EXCEEDED). cairn answers Unavailable;
  // etcd 3.4 answers Unavailable "request timed out" or, for a proposal held while it has no
  // leader, UNKNOWN "context deadline exceeded".
  auto put = PutKey(c.ClientEndpoint(2), "minority/k", "lost", kClientDeadlineMs);
  auto read = GetKey(c.ClientEndpoint(2), "minority/k", false, kClientDeadlineMs);
  auto put2 = PutKey(c.ClientEndpoint(2), "minority/k", "lost2", kClientDeadlineMs);
  for (const absl::Status& st : {put.status(), read.status(), put2.status()}) {
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
    if (GetParam() == ServerKind::kCairn) {
      EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
    }
  }
  if (GetParam() == ServerKind::kCairn) {
    EXPECT_TRUE(absl::StrContains(read.status().message(), "etcdserver: no leader"))
        << read.status();
    EXPECT_TRUE(absl::StrContains(put2.status().message(), "etcdserver: no leader"))
        << put2.status();
  }
  auto local = GetKey(c.ClientEndpoint(2), "minority/k", /*serializable=*/true);
  ASSERT_TRUE(local.ok()) << local.status();
  ASSERT_EQ(local->kvs_size(), 1);
  EXPECT_EQ(local->kvs(0).value(), "before");

  ASSERT_TRUE(c.Restart(1).ok()) << c.LogTail(1);
  ASSERT_TRUE(
      PollUntil([&] { return PutKey(c.ClientEndpoint(2), "minority/k", "after", 5000).ok(); },
                std::chrono::milliseconds(kLeaderBoundMs)));
  auto after = GetKey(c.ClientEndpoint(1), "minority/k", false, 15000);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->kvs_size(), 1);
  EXPECT_EQ(after->kvs(0).value(), "after");
  ASSERT_TRUE(c.Restart(0).ok()) << c.LogTail(0);
  ASSERT_TRUE(WaitConverged(c, kConvergeBoundMs).ok());
}

// SIGSTOP the leader past the election timeout; the others elect a new leader and take a write.
// After SIGCONT, a linearizable read through the old leader may fail but must never return the
// old value, and the old leader eventually reports the new leader.
TEST_P(FailoverTest, PausedOldLeaderNeverServesStaleLinearizableRead) {
  auto cluster = ServerCluster::Start(FastOptions(GetParam(), 3));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  auto old_leader = WaitForLeader(c, kLeaderBoundMs);
  ASSERT_TRUE(old_leader.ok()) << old_leader.status();
  ASSERT_TRUE(PutKey(c.ClientEndpoint(*old_leader), "paused/k", "old").ok());
  // Connect before pausing so the first read after SIGCONT goes out at once.
  auto old_stub = etcdserverpb::KV::NewStub(MakeTestChannel(c.ClientEndpoint(*old_leader)));
  ASSERT_TRUE(GetKey(c.ClientEndpoint(*old_leader), "paused/k").ok());

  c.Pause(*old_leader);
  auto new_leader = WaitForLeader(c, kLeaderBoundMs, {*old_leader});
  if (!new_leader.ok()) c.Resume(*old_leader);
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  ASSERT_NE(*new_leader, *old_leader);
  auto new_leader_id = MemberId(c, *new_leader);
  ASSERT_TRUE(new_leader_id.ok());
  auto put = PutKey(c.ClientEndpoint(*new_leader), "paused/k", "new");
  if (!put.ok()) c.Resume(*old_leader);
  ASSERT_TRUE(put.ok()) << put.status();

  // Reads in flight at the moment of SIGCONT, and reads right after it.
  std::atomic<int> stale{0}, answered{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        etcdserverpb::RangeRequest request;
        request.set_key("paused/k");
        etcdserverpb::RangeResponse response;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
        if (!old_stub->Range(&context, request, &response).ok()) continue;
        ++answered;
        if (response.kvs_size() != 1 || response.kvs(0).value() != "new") ++stale;
      }
    });
  }
  c.Resume(*old_leader);
  for (auto& r : readers) r.join();
  EXPECT_EQ(stale.load(), 0) << "old leader served a stale linearizable read (" << answered.load()
                             << " answered)";

  // Eventually the old leader answers with the new value and follows the new leader.
  ASSERT_TRUE(PollUntil(
      [&] {
        auto got = GetKey(c.ClientEndpoint(*old_leader), "paused/k", false, 2000);
        if (!got.ok()) return false;
        EXPECT_EQ(got->kvs_size(), 1);
        if (got->kvs_size() == 1) {
          EXPECT_EQ(got->kvs(0).value(), "new");
        }
        return true;
      },
      std::chrono::milliseconds(kLeaderBoundMs)));
  auto leader_seen = PollUntil(
      [&] {
        auto status = MemberStatus(c.ClientEndpoint(*old_leader));
        return status.ok() && status->leader() != status->header().member_id() &&
               status->leader() != 0;
      },
      std::chrono::milliseconds(kLeaderBoundMs));
  EXPECT_TRUE(leader_seen) << "old leader still claims leadership";
  auto agreed = WaitForLeader(c, kLeaderBoundMs);
  ASSERT_TRUE(agreed.ok()) << agreed.status();
  auto status = MemberStatus(c.ClientEndpoint(*old_leader));
  ASSERT_TRUE(status.ok());
  auto agreed_id = MemberId(c, *agreed);
  ASSERT_TRUE(agreed_id.ok());
  EXPECT_EQ(status->leader(), *agreed_id);
  auto digest = WaitConverged(c, kConvergeBoundMs);
  ASSERT_TRUE(digest.ok()) << digest.status();
}

INSTANTIATE_TEST_SUITE_P(Cluster, FailoverTest, ::testing::ValuesIn(TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::testing::cluster
