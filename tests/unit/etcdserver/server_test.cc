// The member's write path: concurrent proposals each get their own revision, every one completes,
// and what was acknowledged survives a reopen; Stop() ends every pending proposal.
#include "server/etcdserver/server.h"

#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/base/errors.h"

namespace cairn::etcdserver {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-server-XXXXXX";
    config_.data_dir = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(config_.data_dir); }
  static cairnpb::InternalRequest PutReq(const std::string& k, const std::string& v) {
    cairnpb::InternalRequest r;
    r.mutable_put()->set_key(k);
    r.mutable_put()->set_value(v);
    return r;
  }
  ServerConfig config_;
};

TEST_F(ServerTest, ConcurrentProposalsGetDistinctRevisionsAndSurviveReopen) {
  constexpr int kThreads = 8, kPerThread = 100;
  std::mutex mu;
  std::set<int64_t> revisions;
  {
    auto server = Server::Open(config_);
    ASSERT_TRUE(server.ok()) << server.status();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::promise<mvcc::ApplyResult> done;
          (*server)->Propose(PutReq("k" + std::to_string(t) + "/" + std::to_string(i), "v"),
                             [&](mvcc::ApplyResult r) { done.set_value(std::move(r)); });
          mvcc::ApplyResult r = done.get_future().get();
          ASSERT_TRUE(r.status.ok()) << r.status;
          std::lock_guard<std::mutex> l(mu);
          EXPECT_TRUE(revisions.insert(r.put.header().revision()).second);
        }
      });
    }
    for (auto& th : threads) th.join();
    Server::Stats stats = (*server)->stats();
    // Plus the bootstrap conf change, the leader's no-op and the member's published attributes.
    EXPECT_GE(stats.entries, static_cast<uint64_t>(kThreads * kPerThread));
    // Every proposal went through the WAL (the bootstrap entries are written before raft runs).
    EXPECT_GE(stats.wal_entries, static_cast<uint64_t>(kThreads * kPerThread));
    EXPECT_LE(stats.fsyncs, stats.wal_entries);
  }
  ASSERT_EQ(revisions.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*revisions.begin(), 2);  // a new store is at revision 1
  EXPECT_EQ(*revisions.rbegin(), kThreads * kPerThread + 1);
  auto reopened = Server::Open(config_);
  ASSERT_TRUE(reopened.ok());
  mvcc::KvStore* kv = (*reopened)->kv();
  etcdserverpb::RangeRequest all;
  all.set_key("k");
  all.set_range_end("l");
  all.set_count_only(true);
  EXPECT_EQ(kv->Range(kv->View(), all)->count(), kThreads * kPerThread);
}

// Group commit under load (docs/raft.md): with hundreds of proposals in flight the raft thread
// waits for more before a cycle, and the applier's progress during that wait passes while the
// proposals stay held; every proposal still completes once, with its own revision.
TEST_F(ServerTest, ManyProposalsInFlightWaitForTheirGroup) {
  constexpr int kInFlight = 256, kRounds = 40;
  auto server = Server::Open(config_);
  ASSERT_TRUE(server.ok()) << server.status();
  std::set<int64_t> revisions;
  std::mutex mu;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::promise<mvcc::ApplyResult>> done(kInFlight);
    for (int i = 0; i < kInFlight; ++i) {
      (*server)->Propose(PutReq("g" + std::to_string(round * kInFlight + i), "v"),
                         [&done, i](mvcc::ApplyResult r) { done[i].set_value(std::move(r)); });
    }
    for (auto& d : done) {
      mvcc::ApplyResult r = d.get_future().get();
      ASSERT_TRUE(r.status.ok()) << r.status;
      std::lock_guard<std::mutex> l(mu);
      EXPECT_TRUE(revisions.insert(r.put.header().revision()).second);
    }
    Server::Stats s = (*server)->stats();
    if (s.group_commit_waits > 0 && s.group_commit_holds > 0 && round >= 3) break;
  }
  Server::Stats stats = (*server)->stats();
  EXPECT_GT(stats.group_commit_waits, 0u);
  EXPECT_GT(stats.group_commit_holds, 0u);
  EXPECT_LE(stats.fsyncs, stats.wal_entries);
  ASSERT_GE(revisions.size(), static_cast<size_t>(4 * kInFlight));
  EXPECT_EQ(*revisions.rbegin() - *revisions.begin() + 1, static_cast<int64_t>(revisions.size()));
}

// Large entries: a raft snapshot follows every snapshot_log_bytes of committed entries, and the
// log keeps at most snapshot_catch_up_bytes behind it, so the log in memory (and what a restart
// replays) stays bounded though far fewer entries than --snapshot-count were written. A reopen
// after those snapshots still has every write.
TEST_F(ServerTest, RaftLogIsBoundedInBytes) {
  config_.snapshot_log_bytes = 256 << 10;
  config_.snapshot_catch_up_bytes = 64 << 10;
  constexpr int kPuts = 100;
  const std::string value(16 << 10, 'v');
  {
    auto server = Server::Open(config_);
    ASSERT_TRUE(server.ok()) << server.status();
    for (int i = 0; i < kPuts; ++i) {
      std::promise<mvcc::ApplyResult> done;
      (*server)->Propose(PutReq("big/" + std::to_string(i), value),
                         [&](mvcc::ApplyResult r) { done.set_value(std::move(r)); });
      mvcc::ApplyResult r = done.get_future().get();
      ASSERT_TRUE(r.status.ok()) << r.status;
    }
    Server::Stats stats = (*server)->stats();
    // 1.6 MB of entries: a snapshot about every 256 KiB (the last may not have run yet).
    EXPECT_GE(stats.raft_snapshots, 4u);
    EXPECT_LE(stats.raft_log_bytes, (256u << 10) + (64u << 10) + 2 * value.size());
  }
  auto reopened = Server::Open(config_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  mvcc::KvStore* kv = (*reopened)->kv();
  etcdserverpb::RangeRequest all;
  all.set_key("big/");
  all.set_range_end("big0");
  all.set_count_only(true);
  EXPECT_EQ(kv->Range(kv->View(), all)->count(), kPuts);
}

// Admin tasks (membership changes) run in order on their own thread; those queued when the member
// stops still run, and after Stop a task runs on the caller's thread, so none is ever lost.
TEST_F(ServerTest, AdminTasksRunInOrderOffTheCallerAndNoneIsLostAtStop) {
  auto server = Server::Open(config_);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::thread::id caller = std::this_thread::get_id();
  std::mutex mu;
  std::vector<int> order;
  bool on_caller = false;
  std::promise<void> gate;  // holds the admin thread so the later tasks queue up behind it
  std::shared_future<void> opened = gate.get_future().share();
  (*server)->RunAdmin([&, opened] {
    opened.wait();
    std::lock_guard<std::mutex> l(mu);
    order.push_back(0);
    on_caller = on_caller || std::this_thread::get_id() == caller;
  });
  constexpr int kTasks = 50;
  for (int i = 1; i < kTasks; ++i) {
    (*server)->RunAdmin([&, i] {
      std::lock_guard<std::mutex> l(mu);
      order.push_back(i);
      on_caller = on_caller || std::this_thread::get_id() == caller;
    });
  }
  gate.set_value();
  (*server)->Stop();  // joins the admin thread after it ran every queued task
  {
    std::lock_guard<std::mutex> l(mu);
    ASSERT_EQ(order.size(), static_cast<size_t>(kTasks));
    for (int i = 0; i < kTasks; ++i) EXPECT_EQ(order[i], i);
    EXPECT_FALSE(on_caller);
  }
  bool ran = false;
  (*server)->RunAdmin([&] { ran = std::this_thread::get_id() == caller; });
  EXPECT_TRUE(ran);
  // A membership change after Stop fails fast instead of hanging.
  std::promise<absl::Status> removed;
  (*server)->RunAdmin([&] {
    (*server)->RemoveMember((*server)->member_id(), [&](absl::StatusOr<cairnpb::Member> m) {
      removed.set_value(m.status());
    });
  });
  EXPECT_FALSE(removed.get_future().get().ok());
}

TEST_F(ServerTest, StopCompletesEveryAcceptedProposal) {
  auto server = Server::Open(config_);
  ASSERT_TRUE(server.ok());
  constexpr int kCount = 500;
  std::atomic<int> ok{0}, stopped{0}, other{0};
  for (int i = 0; i < kCount; ++i) {
    (*server)->Propose(PutReq("k" + std::to_string(i), "v"), [&](mvcc::ApplyResult r) {
      if (r.status.ok()) {
        ++ok;
      } else if (base::IsError(r.status, base::ErrorKind::kStopped)) {
        ++stopped;
      } else {
        ++other;
      }
    });
  }
  (*server)->Stop();
  // Every call ended: applied, or "server stopped" if it was not applied yet (an entry already
  // in the log is applied at the next start).
  EXPECT_EQ(ok + stopped + other, kCount);
  EXPECT_EQ(other, 0);
  mvcc::ApplyResult late;
  (*server)->Propose(PutReq("late", "v"), [&](mvcc::ApplyResult r) { late = std::move(r); });
  EXPECT_TRUE(base::IsError(late.status, base::ErrorKind::kStopped));
}

TEST_F(ServerTest, OversizedProposalIsRejectedBeforeTheLog) {
  config_.max_request_bytes = 1024;
  auto server = Server::Open(config_);
  ASSERT_TRUE(server.ok());
  mvcc::ApplyResult res;
  (*server)->Propose(PutReq("k", std::string(2048, 'x')),
                     [&](mvcc::ApplyResult r) { res = std::move(r); });
  EXPECT_TRUE(base::IsError(res.status, base::ErrorKind::kRequestTooLarge));
  EXPECT_EQ((*server)->kv()->View().revision, 1);
}

// A lone voter's leader knows its read index without the raft thread (docs/raft.md, "A lone
// voter's reads"): once it has applied that index, a linearizable read barrier completes on the
// caller's thread, and the read sees every acknowledged write.
TEST_F(ServerTest, LoneVoterReadBarrierRunsOnTheCallersThreadOnceApplied) {
  auto server = Server::Open(config_);
  ASSERT_TRUE(server.ok()) << server.status();
  std::promise<mvcc::ApplyResult> put;
  (*server)->Propose(PutReq("lone", "v"),
                     [&](mvcc::ApplyResult r) { put.set_value(std::move(r)); });
  ASSERT_TRUE(put.get_future().get().status.ok());
  // A barrier that waits brings the applier up to the read index; with no write since, the next
  // one completes at once. Entries the member proposes itself (its attributes) may land between,
  // so a few rounds are allowed.
  bool inline_seen = false;
  for (int round = 0; round < 20 && !inline_seen; ++round) {
    std::promise<absl::Status> waited;
    (*server)->ReadBarrier([&](absl::Status st) { waited.set_value(st); });
    ASSERT_TRUE(waited.get_future().get().ok());
    const std::thread::id caller = std::this_thread::get_id();
    std::thread::id ran_on;
    std::promise<absl::Status> done;
    (*server)->ReadBarrier([&](absl::Status st) {
      ran_on = std::this_thread::get_id();
      done.set_value(st);
    });
    ASSERT_TRUE(done.get_future().get().ok());
    inline_seen = ran_on == caller;
  }
  EXPECT_TRUE(inline_seen);
  mvcc::KvStore* kv = (*server)->kv();
  etcdserverpb::RangeRequest get;
  get.set_key("lone");
  EXPECT_EQ(kv->Range(kv->View(), get)->count(), 1);
}

TEST_F(ServerTest, IdentityIsFixedAtFirstStartAndTermGrowsPerStart) {
  // A lone member elects itself at every start: the term grows by one each time.
  // A linearizable read barrier completes only once the member has a leader (it waits for one,
  // up to LeaderWaitMs): no polling.
  auto wait_leader = [](Server* s) {
    std::promise<absl::Status> barrier;
    s->ReadBarrier([&](absl::Status st) { barrier.set_value(st); });
    absl::Status st = barrier.get_future().get();
    EXPECT_TRUE(st.ok()) << st;
    return st.ok() && s->is_leader();
  };
  uint64_t member, term;
  {
    auto s = Server::Open(config_);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(wait_leader(s->get()));
    member = (*s)->member_id();
    term = (*s)->term();
  }
  config_.initial_cluster_token = "another-token";  // ignored on restart, as etcd
  auto s = Server::Open(config_);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(wait_leader(s->get()));
  EXPECT_EQ((*s)->member_id(), member);
  EXPECT_EQ((*s)->term(), term + 1);
}

}  // namespace
}  // namespace cairn::etcdserver
