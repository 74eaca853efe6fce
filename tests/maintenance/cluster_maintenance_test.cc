// cairn's maintenance on real members: defragment under load, HashKV across members and
// corruption detection, `etcdctl snapshot save` + `cairn snapshot restore` into a new 3-member
// cluster, periodic auto-compaction (docs/maintenance.md).
#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "tests/maintenance/maintenance_util.h"

namespace cairn::testing::maintenance {
namespace {

TEST(MaintenanceDefragTest, OnlineUnderConcurrentWrites) {
  auto cluster = ServerCluster::Start(Fast(ServerKind::kCairn, 1));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const std::string endpoint = (*cluster)->ClientEndpoint(0);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_error;
  std::mutex mu;
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      Endpoint ep(endpoint);
      if (!ep.WaitConnected()) {
        failed.fetch_add(1);
        std::lock_guard<std::mutex> l(mu);
        if (first_error.empty()) first_error = absl::StrCat("writer ", w, ": no connection");
        return;
      }
      for (int i = 0; !stop.load(); ++i) {
        grpc::Status st = ep.Put(absl::StrCat("w", w, "/", i % 50), std::string(512, 'a' + w));
        if (st.ok()) {
          ok.fetch_add(1);
        } else {
          failed.fetch_add(1);
          std::lock_guard<std::mutex> l(mu);
          if (first_error.empty()) first_error = Outcome(st);
        }
      }
    });
  }
  Endpoint ep(endpoint);
  // Writes happen before, between and after the defragments (all counted below).
  PollUntil([&] { return ok.load() > 200; }, std::chrono::milliseconds(kBoundMs));
  for (int round = 0; round < 3; ++round) {
    int before = ok.load();
    ASSERT_TRUE(ep.Compact(ep.Revision()).ok());
    EXPECT_EQ(Outcome(ep.Defragment()), "OK");
    PollUntil([&] { return ok.load() > before + 50; }, std::chrono::milliseconds(kBoundMs));
  }
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_EQ(failed.load(), 0) << first_error;
  EXPECT_GT(ok.load(), 350);
}

// Kills `victim`, damages its newest revision offline, checks that it refuses to start with
// --experimental-initial-corrupt-check ("found data inconsistency with peers"), then restarts it
// without the check.
void DamageAndRestart(ServerCluster& c, int victim) {
  std::vector<std::string> argv = CommandLine(c.Pid(victim));
  ASSERT_FALSE(argv.empty());
  c.Kill(victim);
  ASSERT_TRUE(DamageNewestRevision(c.DataDir(victim)).ok());
  argv.push_back("--experimental-initial-corrupt-check");
  argv.push_back("--log-level=info");
  CommandResult refused = RunCommand(argv, "", 30000);
  EXPECT_EQ(refused.exit_code, 1) << Describe(refused);
  EXPECT_NE((refused.out + refused.err).find("found data inconsistency with peers"),
            std::string::npos)
      << Describe(refused);
  ASSERT_TRUE(c.Restart(victim).ok());
}

// With CORRUPT raised, every member refuses writes with etcd's "corrupt cluster" and still serves
// reads. The victim is stopped (so the leader's periodic check, which skips unreachable members,
// cannot raise the alarm again), the alarm disarmed, and writes resume.
void ExpectCorruptRefusesWritesThenDisarm(ServerCluster& c,
                                          std::vector<std::unique_ptr<Endpoint>>& eps, int victim,
                                          uint64_t victim_id) {
  const std::string kCorrupt = "15: etcdserver: corrupt cluster";
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    Endpoint& ep = *eps[i];
    std::string put;  // the alarm is applied on each member through raft: wait for it
    ASSERT_TRUE(PollUntil([&] { return (put = Outcome(ep.Put("w", "x"))) == kCorrupt; },
                          std::chrono::milliseconds(kBoundMs), std::chrono::milliseconds(50)))
        << put;
    EXPECT_EQ(Outcome(ep.Delete("key1")), kCorrupt);
    EXPECT_EQ(Outcome(ep.WriteTxn("w", "x")), kCorrupt);
    EXPECT_EQ(Outcome(ep.Compact(2)), kCorrupt);
    EXPECT_EQ(Outcome(ep.LeaseGrant(60)), kCorrupt);
    etcdserverpb::RangeResponse r;
    EXPECT_EQ(Outcome(ep.Get("key", &r, 0, "kez")), "OK");
    EXPECT_EQ(Outcome(ep.ReadTxn("key1")), "OK");
  }
  c.Kill(victim);
  Endpoint& healthy = *eps[(victim + 1) % 3];
  etcdserverpb::AlarmResponse disarmed;
  ASSERT_EQ(Outcome(healthy.Alarm(etcdserverpb::AlarmRequest::DEACTIVATE, victim_id,
                                  etcdserverpb::CORRUPT, &disarmed)),
            "OK");
  ASSERT_EQ(disarmed.alarms_size(), 1);
  EXPECT_EQ(disarmed.alarms(0).alarm(), etcdserverpb::CORRUPT);
  std::string put;
  EXPECT_TRUE(PollUntil([&] { return (put = Outcome(healthy.Put("w", "after"))) == "OK"; },
                        std::chrono::milliseconds(kBoundMs), std::chrono::milliseconds(50)))
      << put;
  EXPECT_EQ(Outcome(healthy.LeaseGrant(60)), "OK");
}

// A random workload over all members, compaction included; then every member's HashKV at one
// revision is equal. A member's store damaged offline is refused by the initial corruption check
// and, once running, gets the CORRUPT alarm from the leader's periodic check.
TEST(MaintenanceHashTest, HashKvEqualThenCorruptionDetected) {
  auto cluster = ServerCluster::Start(
      Fast(ServerKind::kCairn, 3, {"--experimental-corrupt-check-time", "300ms"}));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  std::vector<std::unique_ptr<Endpoint>> eps;
  for (int i = 0; i < 3; ++i) eps.push_back(std::make_unique<Endpoint>(c.ClientEndpoint(i)));
  std::mt19937 rng(11);
  for (int i = 0; i < 150; ++i) {
    Endpoint& ep = *eps[rng() % 3];
    std::string key = "key" + std::to_string(rng() % 20);
    int op = static_cast<int>(rng() % 10);
    grpc::Status st = op < 6   ? ep.Put(key, std::to_string(rng()))
                      : op < 8 ? ep.Delete(key)
                               : ep.WriteTxn(key, "txn" + std::to_string(i));
    ASSERT_TRUE(st.ok()) << Outcome(st);
    if (i == 90) {
      ASSERT_TRUE(ep.Compact(ep.Revision() - 20).ok());
    }
  }
  auto digest = WaitConverged(c);
  ASSERT_TRUE(digest.ok()) << digest.status();
  std::vector<uint32_t> hashes;
  for (int64_t rev : {int64_t{0}, digest->revision, digest->revision - 10}) {
    std::vector<uint32_t> at;
    for (auto& ep : eps) {
      etcdserverpb::HashKVResponse h;
      ASSERT_EQ(Outcome(ep->HashKV(rev, &h)), "OK");
      at.push_back(h.hash());
    }
    EXPECT_EQ(at[0], at[1]) << "revision " << rev;
    EXPECT_EQ(at[0], at[2]) << "revision " << rev;
    hashes.push_back(at[0]);
  }
  EXPECT_NE(hashes[1], hashes[2]);  // different revisions, different history
  etcdserverpb::AlarmResponse none;
  ASSERT_TRUE(eps[0]->Alarm(etcdserverpb::AlarmRequest::GET, 0, etcdserverpb::NONE, &none).ok());
  EXPECT_EQ(none.alarms_size(), 0) << "no false CORRUPT while the members agree";

  auto leader = WaitForLeader(c);
  ASSERT_TRUE(leader.ok());
  const int victim = (*leader + 1) % 3;
  auto victim_id = MemberId(c, victim);
  ASSERT_TRUE(victim_id.ok());
  DamageAndRestart(c, victim);
  if (::testing::Test::HasFatalFailure()) return;
  // Started without the initial check, it serves; the leader's periodic check raises CORRUPT.
  etcdserverpb::HashKVResponse damaged, healthy;
  ASSERT_EQ(Outcome(eps[victim]->HashKV(digest->revision, &damaged)), "OK");
  ASSERT_EQ(Outcome(eps[*leader]->HashKV(digest->revision, &healthy)), "OK");
  EXPECT_NE(damaged.hash(), healthy.hash());
  etcdserverpb::AlarmResponse alarms;
  bool raised = PollUntil(
      [&] {
        alarms.Clear();
        return eps[*leader]
                   ->Alarm(etcdserverpb::AlarmRequest::GET, 0, etcdserverpb::CORRUPT, &alarms)
                   .ok() &&
               alarms.alarms_size() > 0;
      },
      std::chrono::milliseconds(kBoundMs), std::chrono::milliseconds(100));
  ASSERT_TRUE(raised) << c.LogTail(*leader);
  EXPECT_EQ(alarms.alarms(0).memberid(), *victim_id);
  CommandResult list = Etcdctl(c.ClientUrls(), {"alarm", "list"});
  EXPECT_NE(list.out.find(absl::StrCat("memberID:", *victim_id, " alarm:CORRUPT")),
            std::string::npos)
      << Describe(list);
  ExpectCorruptRefusesWritesThenDisarm(c, eps, victim, *victim_id);
}

// With auth enabled, the client API's HashKV is root only, yet the corruption check still works:
// members ask each other over the peer transport (no token; docs/auth.md "Maintenance"). The
// damaged member is refused by the initial check and gets CORRUPT from the periodic one; had the
// check asked on the client URLs without a token, every peer would be skipped and neither would
// happen.
TEST(MaintenanceHashTest, HashKvCorruptionDetectedWithAuth) {
  auto cluster = ServerCluster::Start(Fast(
      ServerKind::kCairn, 3, {"--experimental-corrupt-check-time", "300ms", "--bcrypt-cost", "4"}));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ServerCluster& c = **cluster;
  const std::vector<std::string> root = {"--user", "root:rootpw"};
  auto as_root = [&](std::vector<std::string> args) {
    args.insert(args.begin(), root.begin(), root.end());
    return Etcdctl(c.ClientUrls(), args);
  };
  CommandResult r = Etcdctl(c.ClientUrls(), {"user", "add", "root:rootpw"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Etcdctl(c.ClientUrls(), {"auth", "enable"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  for (int k = 0; k < 5; ++k) {
    r = as_root({"put", "k" + std::to_string(k), "v"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }
  // Every member at the same revision (Status needs no user).
  int64_t revision = 0;
  ASSERT_TRUE(PollUntil(
      [&] {
        std::vector<int64_t> revs;
        for (int i = 0; i < 3; ++i) {
          auto st = MemberStatus(c.ClientEndpoint(i));
          if (!st.ok()) return false;
          revs.push_back(st->header().revision());
        }
        revision = revs[0];
        return revs[0] == revs[1] && revs[0] == revs[2];
      },
      std::chrono::milliseconds(kBoundMs)));
  Endpoint anonymous(c.ClientEndpoint(0));
  etcdserverpb::HashKVResponse h;
  EXPECT_EQ(Outcome(anonymous.HashKV(revision, &h)), "2: auth: user name is empty");
  r = as_root({"alarm", "list"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "") << "no false CORRUPT while the members agree";

  auto leader = WaitForLeader(c);
  ASSERT_TRUE(leader.ok());
  const int victim = (*leader + 1) % 3;
  auto victim_id = MemberId(c, victim);
  ASSERT_TRUE(victim_id.ok());
  DamageAndRestart(c, victim);
  if (::testing::Test::HasFatalFailure()) return;
  const std::string expected = absl::StrCat("memberID:", *victim_id, " alarm:CORRUPT");
  EXPECT_TRUE(PollUntil(
      [&] {
        r = as_root({"alarm", "list"});
        return r.out.find(expected) != std::string::npos;
      },
      std::chrono::milliseconds(kBoundMs), std::chrono::milliseconds(100)))
      << Describe(r) << c.LogTail(*leader);
}

TEST(MaintenanceSnapshotTest, SaveThenRestoreThreeMembers) {
  auto source = ServerCluster::Start(Fast(ServerKind::kCairn, 1));
  ASSERT_TRUE(source.ok()) << source.status();
  Endpoint src((*source)->ClientEndpoint(0));
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(src.Put("key" + std::to_string(i % 40), "value" + std::to_string(i)).ok());
  }
  ASSERT_TRUE(src.Delete("key3").ok());
  auto want = KvContentDigest((*source)->ClientEndpoint(0));
  ASSERT_TRUE(want.ok()) << want.status();

  const std::string dir = (*source)->DataDir(0) + "/../snapshot-test";
  std::filesystem::create_directories(dir);
  const std::string file = dir + "/snap.db";
  CommandResult saved = Etcdctl((*source)->ClientUrls(), {"snapshot", "save", file});
  ASSERT_EQ(saved.exit_code, 0) << Describe(saved);
  EXPECT_NE(saved.out.find("Snapshot saved at"), std::string::npos) << Describe(saved);
  EXPECT_EQ(std::filesystem::file_size(file) % 512, 32u);

  const std::string cairn = ServerBinary(ServerKind::kCairn);
  // A damaged or truncated file is refused, and leaves no data dir behind.
  {
    std::filesystem::copy_file(file, dir + "/bad.db");
    std::fstream f(dir + "/bad.db", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
    f.close();
    CommandResult r = RunCommand({cairn, "snapshot", "restore", dir + "/bad.db", "--data-dir",
                                  dir + "/bad-dir", "--name", "m0"});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_NE(r.err.find("sha256 checksum mismatch"), std::string::npos) << Describe(r);
    std::filesystem::resize_file(dir + "/bad.db", 1000);
    r = RunCommand({cairn, "snapshot", "restore", dir + "/bad.db", "--data-dir", dir + "/bad-dir",
                    "--name", "m0"});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_NE(r.err.find("has no sha256 checksum"), std::string::npos) << Describe(r);
    EXPECT_FALSE(std::filesystem::exists(dir + "/bad-dir"));
  }

  // A new 3-member cluster (its names, ports and token), rebuilt from the one snapshot.
  auto target = ServerCluster::Start(Fast(ServerKind::kCairn, 3));
  ASSERT_TRUE(target.ok()) << target.status();
  ServerCluster& t = **target;
  std::vector<std::string> argv0 = CommandLine(t.Pid(0));
  const std::string initial_cluster = FlagValue(argv0, "--initial-cluster");
  const std::string token = FlagValue(argv0, "--initial-cluster-token");
  ASSERT_FALSE(initial_cluster.empty());
  for (int i = 0; i < 3; ++i) t.Kill(i);
  for (int i = 0; i < 3; ++i) {
    std::filesystem::remove_all(t.DataDir(i));
    CommandResult r =
        RunCommand({cairn, "snapshot", "restore", file, "--data-dir", t.DataDir(i), "--name",
                    t.Name(i), "--initial-cluster", initial_cluster, "--initial-cluster-token",
                    token, "--initial-advertise-peer-urls", t.PeerUrl(i)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }
  ASSERT_TRUE(t.RestartAll().ok());
  auto got = WaitConverged(t);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *want) << DescribeDigest(*got) << " vs " << DescribeDigest(*want);
  auto members = ListMembers(t.ClientEndpoint(0));
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(members->members_size(), 3);
  Endpoint ep(t.ClientEndpoint(1));
  etcdserverpb::PutResponse put;
  ASSERT_EQ(Outcome(ep.Put("after", "restore", &put)), "OK");
  EXPECT_EQ(put.header().revision(), want->revision + 1);
  std::filesystem::remove_all(dir);
}

// At most 4 Snapshot streams run at once (api::kMaxSnapshotStreams, docs/limits.md): with four
// streams held open by clients that stopped reading, a fifth is refused at once with etcd's
// "too many requests"; once one ends, a new one is served whole.
TEST(MaintenanceSnapshotTest, ConcurrentStreamsAreBounded) {
  constexpr int kMaxStreams = 4;
  auto cluster = ServerCluster::Start(Fast(ServerKind::kCairn, 1));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  Endpoint ep((*cluster)->ClientEndpoint(0));
  // Large enough that an unread stream waits on HTTP/2 flow control long before its end.
  const std::string value(256 * 1024, 'v');
  for (int i = 0; i < 32; ++i) ASSERT_TRUE(ep.Put("big" + std::to_string(i), value).ok());
  auto channel = MakeTestChannel((*cluster)->ClientEndpoint(0));
  auto stub = etcdserverpb::Maintenance::NewStub(channel);
  struct Open {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<etcdserverpb::SnapshotResponse>> reader;
  };
  std::vector<Open> held;
  for (int i = 0; i < kMaxStreams; ++i) {
    Open o{Ctx(60000), nullptr};
    o.reader = stub->Snapshot(o.ctx.get(), etcdserverpb::SnapshotRequest());
    etcdserverpb::SnapshotResponse first;
    ASSERT_TRUE(o.reader->Read(&first)) << i;
    held.push_back(std::move(o));
  }
  auto whole = [&](std::string* outcome) {
    auto ctx = Ctx(60000);
    auto reader = stub->Snapshot(ctx.get(), etcdserverpb::SnapshotRequest());
    etcdserverpb::SnapshotResponse msg;
    uint64_t bytes = 0;
    while (reader->Read(&msg)) bytes += msg.blob().size();
    *outcome = Outcome(reader->Finish());
    return bytes;
  };
  std::string outcome;
  EXPECT_EQ(whole(&outcome), 0u);
  EXPECT_EQ(outcome, "8: etcdserver: too many requests");
  held[0].ctx->TryCancel();
  held[0].reader->Finish();
  uint64_t bytes = 0;
  EXPECT_TRUE(PollUntil(
      [&] {
        bytes = whole(&outcome);
        return outcome == "OK";
      },
      std::chrono::milliseconds(kBoundMs), std::chrono::milliseconds(50)))
      << outcome;
  EXPECT_GT(bytes, 32u * value.size());
  for (size_t i = 1; i < held.size(); ++i) held[i].ctx->TryCancel();
  for (size_t i = 1; i < held.size(); ++i) held[i].reader->Finish();
}

TEST(MaintenanceAutoCompactionTest, PeriodicCompactsOldRevisions) {
  for (ServerKind kind : {ServerKind::kEtcd, ServerKind::kCairn}) {
    SCOPED_TRACE(ServerKindName(kind));
    auto cluster = ServerCluster::Start(
        Fast(kind, 1, {"--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1s"}));
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    Endpoint ep((*cluster)->ClientEndpoint(0));
    etcdserverpb::PutResponse first;
    ASSERT_TRUE(ep.Put("k", "v0", &first).ok());
    for (int i = 1; i < 10; ++i) ASSERT_TRUE(ep.Put("k", "v" + std::to_string(i)).ok());
    // Within a few retention periods the first write's revision is compacted away.
    std::string outcome;
    bool compacted = PollUntil(
        [&] {
          etcdserverpb::RangeResponse r;
          outcome = Outcome(ep.Get("k", &r, first.header().revision()));
          return outcome != "OK";
        },
        std::chrono::milliseconds(kBoundMs), std::chrono::milliseconds(100));
    EXPECT_TRUE(compacted);
    EXPECT_EQ(outcome, "11: etcdserver: mvcc: required revision has been compacted");
  }
}

// Revision mode on a real member: every --auto-compaction-interval the leader compacts at the
// current revision minus the retention. etcd 3.4 runs it every 5 minutes without a flag, so this
// end-to-end case runs on cairn only (the schedule itself: compactor_test.cc).
TEST(MaintenanceAutoCompactionTest, RevisionCompactsAtRevisionMinusRetention) {
  constexpr int64_t kRetention = 5;
  auto cluster = ServerCluster::Start(
      Fast(ServerKind::kCairn, 1,
           {"--auto-compaction-mode", "revision", "--auto-compaction-retention",
            std::to_string(kRetention), "--auto-compaction-interval", "200ms"}));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  Endpoint ep((*cluster)->ClientEndpoint(0));
  etcdserverpb::PutResponse last;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(ep.Put("k", "v" + std::to_string(i), &last).ok());
  const int64_t want = last.header().revision() - kRetention;
  etcdserverpb::HashKVResponse h;
  std::string outcome;
  bool compacted = PollUntil(
      [&] {
        outcome = Outcome(ep.HashKV(0, &h));
        return outcome == "OK" && h.compact_revision() == want;
      },
      std::chrono::milliseconds(kBoundMs), std::chrono::milliseconds(50));
  EXPECT_TRUE(compacted) << outcome << " compact_revision " << h.compact_revision() << " want "
                         << want << "\n"
                         << (*cluster)->LogTail(0);
  etcdserverpb::RangeResponse r;
  EXPECT_EQ(Outcome(ep.Get("k", &r, want - 1)),
            "11: etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(Outcome(ep.Get("k", &r, want)), "OK");
  ASSERT_EQ(r.kvs_size(), 1);
  EXPECT_EQ(r.kvs(0).mod_revision(), want);
}

}  // namespace
}  // namespace cairn::testing::maintenance
