// Watch: events, history, filters, compaction, progress, cancel, and the resume guarantees
// (no gap, no duplicate) across a server restart and the loss of one member of three.
#include <atomic>
#include <future>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "tests/client/client_test_util.h"

namespace cairn::client_test {
namespace {

constexpr auto kWait = std::chrono::milliseconds(30000);

class WatchTest : public ClusterTest {
 protected:
  void Start(int members = 1) {
    ASSERT_NO_FATAL_FAILURE(StartCluster(members));
    client_ = Connect();
    ASSERT_NE(client_, nullptr);
  }
  std::unique_ptr<Client> client_;
};

TEST_P(WatchTest, PrefixEventsInOrder) {
  ASSERT_NO_FATAL_FAILURE(Start());
  WatchLog log;
  WatchOptions o;
  o.prefix = true;
  o.created_notify = true;
  auto w = client_->watch().Watch("w/", o, log.Callback());
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->WaitCreated(In(kWait)).ok());
  ASSERT_TRUE(log.WaitFor([](const WatchResponse& r) { return r.created; }));
  auto kv = client_->kv();
  ASSERT_TRUE(kv.Put("w/a", "1").ok());
  ASSERT_TRUE(kv.Put("other", "x").ok());
  ASSERT_TRUE(kv.Put("w/b", "2").ok());
  ASSERT_TRUE(kv.Delete("w/a").ok());
  ASSERT_TRUE(log.WaitEvents(3));
  auto ev = log.events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kv.key, "w/a");
  EXPECT_EQ(ev[0].type, EventType::kPut);
  EXPECT_EQ(ev[1].kv.key, "w/b");
  EXPECT_EQ(ev[2].type, EventType::kDelete);
  EXPECT_LT(ev[0].kv.mod_revision, ev[1].kv.mod_revision);
  EXPECT_EQ((*w)->next_revision(), ev[2].kv.mod_revision + 1);
}

TEST_P(WatchTest, HistoryPrevKvAndFilters) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto kv = client_->kv();
  auto p1 = kv.Put("h", "1");
  ASSERT_TRUE(p1.ok());
  ASSERT_TRUE(kv.Put("h", "2").ok());
  ASSERT_TRUE(kv.Delete("h").ok());
  auto p4 = kv.Put("h", "3");
  ASSERT_TRUE(p4.ok());
  WatchLog log;
  WatchOptions o;
  o.start_revision = p1->header.revision;
  o.prev_kv = true;
  o.filter_delete = true;
  auto w = client_->watch().Watch("h", o, log.Callback());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(log.WaitEvents(3));
  auto ev = log.events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kv.value, "1");
  EXPECT_EQ(ev[1].kv.value, "2");
  ASSERT_TRUE(ev[1].has_prev_kv);
  EXPECT_EQ(ev[1].prev_kv.value, "1");
  EXPECT_EQ(ev[2].kv.value, "3");
  EXPECT_EQ(ev[2].kv.mod_revision, p4->header.revision);
}

TEST_P(WatchTest, CompactionIsReported) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto kv = client_->kv();
  auto p1 = kv.Put("c", "1");
  ASSERT_TRUE(kv.Put("c", "2").ok());
  auto p3 = kv.Put("c", "3");
  ASSERT_TRUE(p1.ok() && p3.ok());
  ASSERT_TRUE(kv.Compact(p3->header.revision).ok());
  WatchLog log;
  WatchOptions o;
  o.start_revision = p1->header.revision;
  auto w = client_->watch().Watch("c", o, log.Callback());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(log.WaitFor([](const WatchResponse& r) { return r.canceled; }));
  auto rs = log.responses();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].compact_revision, p3->header.revision);
  EXPECT_EQ(ErrorKindOf(rs[0].status), ErrorKind::kCompacted);
  EXPECT_TRUE(log.events().empty());
  EXPECT_TRUE((*w)->done());
}

TEST_P(WatchTest, ProgressRequestAndCancel) {
  ASSERT_NO_FATAL_FAILURE(Start());
  WatchLog a;
  WatchLog b;
  auto wa = client_->watch().Watch("pa", {}, a.Callback());
  auto wb = client_->watch().Watch("pa", {}, b.Callback());
  ASSERT_TRUE(wa.ok() && wb.ok());
  ASSERT_TRUE((*wa)->WaitCreated(In(kWait)).ok());
  ASSERT_TRUE((*wb)->WaitCreated(In(kWait)).ok());
  client_->watch().RequestProgress();
  ASSERT_TRUE(a.WaitFor([](const WatchResponse& r) { return r.progress_notify; }));
  (*wa)->Cancel();
  EXPECT_TRUE((*wa)->done());
  ASSERT_TRUE(client_->kv().Put("pa", "1").ok());
  ASSERT_TRUE(b.WaitEvents(1));
  EXPECT_TRUE(a.events().empty());
}

TEST_P(WatchTest, FragmentedRevisionIsReassembled) {
  // The server splits a watch response larger than max-request-bytes + 512 KiB (etcd's gRPC
  // overhead allowance): 320 deletes carrying 1900-byte previous values in one revision.
  ASSERT_NO_FATAL_FAILURE(StartCluster(1, {"--max-request-bytes", "2048"}));
  client_ = Connect();
  ASSERT_NE(client_, nullptr);
  constexpr int kKeys = 320;
  constexpr size_t kValueBytes = 1900;
  std::vector<Future<PutResponse>> puts;
  for (int i = 0; i < kKeys; ++i) {
    puts.push_back(client_->kv().PutAsync("f/" + std::to_string(i), std::string(kValueBytes, 'x')));
  }
  for (auto& p : puts) ASSERT_TRUE(p.Get().ok());
  WatchLog log;
  WatchOptions o;
  o.prefix = true;
  o.prev_kv = true;
  o.fragment = true;
  auto w = client_->watch().Watch("f/", o, log.Callback());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->WaitCreated(In(kWait)).ok());
  DeleteOptions d;
  d.prefix = true;
  auto del = client_->kv().Delete("f/", d);
  ASSERT_TRUE(del.ok()) << del.status();
  ASSERT_TRUE(log.WaitEvents(kKeys));
  auto rs = log.responses();
  ASSERT_EQ(rs.size(), 1u);  // one revision, one response, however the server split it
  ASSERT_EQ(rs[0].events.size(), static_cast<size_t>(kKeys));
  for (const auto& e : rs[0].events) {
    EXPECT_EQ(e.type, EventType::kDelete);
    EXPECT_EQ(e.kv.mod_revision, del->header.revision);
    EXPECT_EQ(e.prev_kv.value.size(), kValueBytes);
  }
}

// A writer puts keys under `prefix` until `count` puts succeeded; only it writes to the cluster,
// so every revision after `start` is one of its puts.
class Writer {
 public:
  Writer(Client* client, std::string prefix, int count)
      : thread_([this, client, prefix, count] {
          CallOptions call;
          call.timeout = std::chrono::milliseconds(2000);
          int done = 0;
          for (int attempt = 0; done < count && attempt < 100000; ++attempt) {
            auto r = client->kv().Put(prefix + std::to_string(done), "v", {}, call);
            if (r.ok()) {
              ++done;
              last_revision_ = r->header.revision;
            } else if (stop_) {
              break;
            }
            done_puts_ = done;
          }
          finished_ = true;
        }) {}
  ~Writer() {
    stop_ = true;
    thread_.join();
  }
  int puts() const { return done_puts_.load(); }
  bool finished() const { return finished_.load(); }
  int64_t last_revision() const { return last_revision_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::atomic<int> done_puts_{0};
  std::atomic<int64_t> last_revision_{0};
  std::thread thread_;
};

// Every revision in (from, to] exactly once and in order.
void ExpectContiguous(const std::vector<Event>& events, int64_t from, int64_t to) {
  ASSERT_FALSE(events.empty());
  int64_t expect = from + 1;
  for (const auto& e : events) {
    ASSERT_EQ(e.kv.mod_revision, expect) << "gap or duplicate at revision " << expect;
    ++expect;
  }
  EXPECT_EQ(expect - 1, to);
}

TEST_P(WatchTest, SurvivesServerRestartWithoutGapOrDuplicate) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto head = client_->kv().Put("start", "x");
  ASSERT_TRUE(head.ok());
  WatchLog log;
  WatchOptions o;
  o.prefix = true;
  auto w = client_->watch().Watch("r/", o, log.Callback());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->WaitCreated(In(kWait)).ok());
  {
    Writer writer(client_.get(), "r/", 60);
    ASSERT_TRUE(PollUntil([&] { return writer.puts() >= 20; }));
    cluster_->Kill(0);
    {
      absl::Status restarted = cluster_->Restart(0);
      ASSERT_TRUE(restarted.ok()) << restarted;
    }
    ASSERT_TRUE(PollUntil([&] { return writer.finished(); }, std::chrono::milliseconds(60000)));
    ASSERT_EQ(writer.puts(), 60);
    int64_t last = writer.last_revision();
    ASSERT_TRUE(log.WaitFor([&](const WatchResponse& r) {
      return !r.events.empty() && r.events.back().kv.mod_revision >= last;
    }));
    ExpectContiguous(log.events(), head->header.revision, last);
  }
  EXPECT_FALSE((*w)->done());
}

// Four watchers share the client's one stream, and the first one's callback holds the stream's
// reader until every put is done: the server's writes back up behind the reader (cairn then
// joins a watcher's later revisions into its queued response; etcd's watcher falls behind into
// catch-up). Every watcher still gets every revision once, in order, and every response carries
// its events in revision order with a header revision no older than its last event.
TEST_P(WatchTest, WatchersBehindAStalledReaderGetEveryRevisionOnce) {
  ASSERT_NO_FATAL_FAILURE(Start());
  std::unique_ptr<Client> writer = Connect();
  ASSERT_NE(writer, nullptr);
  auto head = writer->kv().Put("head", "x");
  ASSERT_TRUE(head.ok()) << head.status();
  constexpr int kWatchers = 4;
  constexpr int kPuts = 1000;  // 4 x 1000 x ~0.6 KB: below cairn's per-stream queue limit
  std::promise<void> puts_done;
  std::shared_future<void> released = puts_done.get_future().share();
  std::vector<WatchLog> logs(kWatchers);
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < kWatchers; ++i) {
    WatchOptions o;
    o.prefix = true;
    WatchCallback log = logs[i].Callback();
    WatchCallback cb = i > 0 ? log : [log, released](const WatchResponse& r) {
      released.wait();
      log(r);
    };
    auto w = client_->watch().Watch("s/", o, std::move(cb));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->WaitCreated(In(kWait)).ok());
    watchers.push_back(std::move(*w));
  }
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int n = t; n < kPuts; n += 4) {
        if (!writer->kv().Put("s/" + std::to_string(n), std::string(512, 'v')).ok()) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  puts_done.set_value();
  ASSERT_EQ(failed.load(), 0);
  const int64_t last = head->header.revision + kPuts;
  for (int i = 0; i < kWatchers; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(logs[i].WaitEvents(kPuts));
    ExpectContiguous(logs[i].events(), head->header.revision, last);
    for (const WatchResponse& r : logs[i].responses()) {
      for (size_t e = 1; e < r.events.size(); ++e) {
        ASSERT_LT(r.events[e - 1].kv.mod_revision, r.events[e].kv.mod_revision);
      }
      if (!r.events.empty()) {
        EXPECT_GE(r.header.revision, r.events.back().kv.mod_revision);
      }
    }
  }
}

// Multi-member: etcd only until cairn runs clusters.
class WatchMembersTest : public WatchTest {};

TEST_P(WatchMembersTest, SurvivesLossOfItsMemberOfThree) {
  ASSERT_NO_FATAL_FAILURE(Start(3));
  auto head = client_->kv().Put("start", "x");
  ASSERT_TRUE(head.ok());
  WatchLog log;
  WatchOptions o;
  o.prefix = true;
  auto w = client_->watch().Watch("m/", o, log.Callback());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->WaitCreated(In(kWait)).ok());
  // The watch stream lives on the client's current endpoint; kill that member.
  std::string current = client_->current_endpoint();
  int victim = 0;
  for (int i = 0; i < cluster_->size(); ++i) {
    if (cluster_->ClientEndpoint(i) == current) victim = i;
  }
  {
    Writer writer(client_.get(), "m/", 60);
    ASSERT_TRUE(PollUntil([&] { return writer.puts() >= 20; }));
    cluster_->Kill(victim);
    ASSERT_TRUE(PollUntil([&] { return writer.finished(); }, std::chrono::milliseconds(60000)));
    ASSERT_EQ(writer.puts(), 60);
    int64_t last = writer.last_revision();
    ASSERT_TRUE(log.WaitFor([&](const WatchResponse& r) {
      return !r.events.empty() && r.events.back().kv.mod_revision >= last;
    }));
    ExpectContiguous(log.events(), head->header.revision, last);
  }
  EXPECT_NE(client_->current_endpoint(), cluster_->ClientEndpoint(victim));
}

INSTANTIATE_TEST_SUITE_P(Servers, WatchTest, ::testing::ValuesIn(CairnServedKinds()), KindName);
INSTANTIATE_TEST_SUITE_P(Servers, WatchMembersTest, ::testing::ValuesIn(EtcdOnly()), KindName);

}  // namespace
}  // namespace cairn::client_test
