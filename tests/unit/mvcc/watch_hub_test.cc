// WatchHub guarantees: ordered by revision, no event twice, none dropped inside the history
// window, one revision never split, progress at R only after every event <= R, a stalled stream
// falls behind and catches up without blocking writes, compacted start revisions are reported.
#include "server/mvcc/watch_hub.h"
#include "cairnpb/internal.pb.h"
#include "tests/unit/mvcc/apply_util.h"

#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "gtest/gtest.h"

namespace cairn::mvcc {
namespace {

// A sink that records what it receives and can refuse deliveries (a full stream).
class RecordingSink : public WatchSink {
 public:
  struct Item {
    int64_t watch_id;
    int64_t revision;
    std::vector<mvccpb::Event> events;
    enum Kind { kEvents, kCompacted, kProgress } kind;
  };
  bool Deliver(int64_t watch_id, int64_t revision, const EventView& events, bool) override {
    std::lock_guard<std::mutex> l(mu_);
    if (stalled_) return false;
    items_.push_back({watch_id, revision, events.Materialize(), Item::kEvents});
    ++unflushed_;
    return true;
  }
  void Flush() override {
    std::lock_guard<std::mutex> l(mu_);
    flushed_batches_.push_back(unflushed_);
    unflushed_ = 0;
  }
  // Deliveries not yet followed by a Flush, and the number of deliveries each Flush covered.
  int unflushed() {
    std::lock_guard<std::mutex> l(mu_);
    return unflushed_;
  }
  std::vector<int> flushed_batches() {
    std::lock_guard<std::mutex> l(mu_);
    return flushed_batches_;
  }
  void Compacted(int64_t watch_id, int64_t compact_revision) override {
    std::lock_guard<std::mutex> l(mu_);
    items_.push_back({watch_id, compact_revision, {}, Item::kCompacted});
  }
  void Progress(int64_t watch_id, int64_t revision) override {
    std::lock_guard<std::mutex> l(mu_);
    items_.push_back({watch_id, revision, {}, Item::kProgress});
  }
  void set_stalled(bool s) {
    std::lock_guard<std::mutex> l(mu_);
    stalled_ = s;
  }
  std::vector<Item> items() {
    std::lock_guard<std::mutex> l(mu_);
    return items_;
  }
  // (revision, key, type) of every event delivered to `watch_id`, in order.
  std::vector<std::tuple<int64_t, std::string, int>> EventsOf(int64_t watch_id) {
    std::vector<std::tuple<int64_t, std::string, int>> out;
    for (const Item& it : items()) {
      if (it.kind != Item::kEvents || it.watch_id != watch_id) continue;
      for (const auto& ev : it.events) {
        out.emplace_back(ev.kv().mod_revision(), ev.kv().key(), ev.type());
      }
    }
    return out;
  }

 private:
  std::mutex mu_;
  bool stalled_ = false;
  std::vector<Item> items_;
  int unflushed_ = 0;
  std::vector<int> flushed_batches_;
};

class WatchHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-watch-XXXXXX";
    dir_ = mkdtemp(tmpl);
    backend_ = std::move(*storage::Backend::Open(dir_ + "/db"));
    kv_ = std::make_unique<KvStore>(backend_.get());
    hub_ = std::make_unique<WatchHub>(kv_.get(), /*progress_interval_ms=*/0);
  }
  void TearDown() override {
    hub_.reset();
    kv_.reset();
    backend_.reset();
    std::filesystem::remove_all(dir_);
  }
  // The server's apply path: apply, sync, publish, notify.
  ApplyResult Apply(const cairnpb::InternalRequest& r) {
    ApplyResult res = mvcc::testing::ApplyRequest(kv_.get(), kv_->applied_index() + 1, r);
    backend_->Sync();
    kv_->Publish();
    if (res.revision > 0) hub_->Notify(res.revision, res.events);
    return res;
  }
  void Put(const std::string& k, const std::string& v) {
    cairnpb::InternalRequest r;
    r.mutable_put()->set_key(k);
    r.mutable_put()->set_value(v);
    Apply(r);
  }
  void Delete(const std::string& k, const std::string& end) {
    cairnpb::InternalRequest r;
    r.mutable_delete_range()->set_key(k);
    r.mutable_delete_range()->set_range_end(end);
    Apply(r);
  }
  // Polls `cond` (bounded: 20 s) for conditions reached by the syncer thread.
  template <typename F>
  void Eventually(F cond) {
    for (int i = 0; i < 20000 && !cond(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(cond()) << "condition not reached";
  }
  void AddWatch(RecordingSink* sink, int64_t id, WatchSpec spec) {
    hub_->Add(sink, id, spec, [](int64_t) {});
  }

  std::string dir_;
  std::unique_ptr<storage::Backend> backend_;
  std::unique_ptr<KvStore> kv_;
  std::unique_ptr<WatchHub> hub_;
};

TEST_F(WatchHubTest, LiveEventsWithFiltersAndPrevKv) {
  RecordingSink sink;
  WatchSpec all{"a", std::string(1, '\0')};
  all.prev_kv = true;
  WatchSpec no_delete{"a", ""};
  no_delete.no_delete = true;
  AddWatch(&sink, 1, all);
  AddWatch(&sink, 2, no_delete);
  Put("a", "1");
  Put("b", "1");
  Delete("a", "");
  auto ev1 = sink.EventsOf(1);
  ASSERT_EQ(ev1.size(), 3u);
  EXPECT_EQ(ev1[2], std::make_tuple(int64_t{4}, std::string("a"), int{mvccpb::Event::DELETE}));
  bool saw_delete = false;
  for (const auto& it : sink.items()) {
    if (it.watch_id != 1 || it.events[0].type() != mvccpb::Event::DELETE) continue;
    saw_delete = true;
    EXPECT_EQ(it.events[0].prev_kv().value(), "1");
  }
  EXPECT_TRUE(saw_delete);
  EXPECT_EQ(sink.EventsOf(2).size(), 1u);
}

// A revision reaching several watchers of one stream is delivered to each, then flushed once, so
// the stream writes them as one batch; nothing delivered is left unflushed.
TEST_F(WatchHubTest, OneFlushPerStreamPerRevision) {
  RecordingSink a;
  RecordingSink b;
  AddWatch(&a, 1, WatchSpec{"k", ""});
  AddWatch(&a, 2, WatchSpec{"k", "l"});
  AddWatch(&a, 3, WatchSpec{"", std::string(1, '\0')});
  AddWatch(&b, 4, WatchSpec{"k", ""});
  AddWatch(&b, 5, WatchSpec{"x", ""});
  Put("k", "1");
  EXPECT_EQ(a.flushed_batches(), std::vector<int>{3});
  EXPECT_EQ(b.flushed_batches(), std::vector<int>{1});
  Put("x", "1");  // reaches watcher 3 of a and watcher 5 of b
  EXPECT_EQ(a.flushed_batches(), (std::vector<int>{3, 1}));
  EXPECT_EQ(b.flushed_batches(), (std::vector<int>{1, 1}));
  Put("y", "1");  // reaches only watcher 3: b is not flushed
  EXPECT_EQ(b.flushed_batches().size(), 2u);
  EXPECT_EQ(a.unflushed() + b.unflushed(), 0);
}

// A catch-up delivery from history is flushed too.
TEST_F(WatchHubTest, CatchUpDeliveriesAreFlushed) {
  for (int i = 0; i < 5; ++i) Put("k", std::to_string(i));
  RecordingSink sink;
  AddWatch(&sink, 1, WatchSpec{"k", "", /*start_revision=*/2});
  Eventually([&] { return sink.EventsOf(1).size() == 5 && sink.unflushed() == 0; });
  EXPECT_FALSE(sink.flushed_batches().empty());
}

TEST_F(WatchHubTest, HistoryThenLiveWithoutGapOrDuplicate) {
  for (int i = 0; i < 50; ++i) Put("k" + std::to_string(i % 5), std::to_string(i));
  RecordingSink sink;
  WatchSpec spec{"k", "l", /*start_revision=*/10};
  AddWatch(&sink, 7, spec);
  std::thread writer([&] {
    for (int i = 50; i < 300; ++i) Put("k" + std::to_string(i % 5), std::to_string(i));
  });
  writer.join();
  // Puts are revisions 2..301; the watcher starts at 10.
  Eventually([&] { return sink.EventsOf(7).size() == 292; });
  auto evs = sink.EventsOf(7);
  for (size_t i = 0; i < evs.size(); ++i) EXPECT_EQ(std::get<0>(evs[i]), 10 + int64_t(i));
  EXPECT_EQ(hub_->unsynced_count(), 0u);
}

TEST_F(WatchHubTest, StalledStreamFallsBehindAndCatchesUp) {
  RecordingSink sink;
  AddWatch(&sink, 1, WatchSpec{"k", "l"});
  Put("k1", "a");
  sink.set_stalled(true);
  for (int i = 0; i < 100; ++i) Put("k" + std::to_string(i % 3), std::to_string(i));
  EXPECT_EQ(hub_->unsynced_count(), 1u);  // writes went on; the watcher fell behind
  sink.set_stalled(false);
  hub_->Kick();
  Eventually([&] { return sink.EventsOf(1).size() == 101; });
  auto evs = sink.EventsOf(1);
  for (size_t i = 0; i < evs.size(); ++i) EXPECT_EQ(std::get<0>(evs[i]), 2 + int64_t(i));
  Eventually([&] { return hub_->unsynced_count() == 0; });
}

TEST_F(WatchHubTest, CompactedStartRevisionIsReported) {
  for (int i = 0; i < 10; ++i) Put("k", std::to_string(i));
  cairnpb::InternalRequest c;
  c.mutable_compaction()->set_revision(6);
  Apply(c);
  RecordingSink sink;
  AddWatch(&sink, 3, WatchSpec{"k", "", /*start_revision=*/2});
  Eventually([&] { return !sink.items().empty(); });
  auto items = sink.items();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].kind, RecordingSink::Item::kCompacted);
  EXPECT_EQ(items[0].revision, 6);
  // From the compact revision itself the history is complete: revisions 6..11.
  RecordingSink ok;
  AddWatch(&ok, 4, WatchSpec{"k", "", /*start_revision=*/6});
  Eventually([&] { return ok.EventsOf(4).size() == 6; });
}

TEST_F(WatchHubTest, ProgressComesAfterEveryEventUpToItsRevision) {
  for (int i = 0; i < 30; ++i) Put("k", std::to_string(i));
  RecordingSink sink;
  AddWatch(&sink, 1, WatchSpec{"k", "", /*start_revision=*/1});
  hub_->RequestProgress(&sink);
  Eventually([&] {
    for (const auto& it : sink.items()) {
      if (it.kind == RecordingSink::Item::kProgress) return true;
    }
    return false;
  });
  int64_t delivered_max = 0;
  for (const auto& it : sink.items()) {
    if (it.kind == RecordingSink::Item::kEvents) {
      delivered_max = std::max(delivered_max, it.events.back().kv().mod_revision());
    } else if (it.kind == RecordingSink::Item::kProgress) {
      EXPECT_EQ(it.watch_id, -1);
      EXPECT_LE(it.revision, delivered_max);
      EXPECT_EQ(it.revision, 31);
    }
  }
}

// Many watchers on random ranges, random stalls, concurrent writes and deletes: every watcher
// gets exactly the history of its range from its start revision, in order.
TEST_F(WatchHubTest, RandomizedGuaranteeChecker) {
  std::mt19937 rng(1234);
  struct W {
    RecordingSink* sink;
    int64_t id;
    WatchSpec spec;
  };
  std::vector<std::unique_ptr<RecordingSink>> sinks;
  for (int i = 0; i < 4; ++i) sinks.push_back(std::make_unique<RecordingSink>());
  std::vector<W> watchers;
  std::vector<std::tuple<int64_t, std::string, int>> history;  // every event ever
  auto record = [&](const ApplyResult& r) {
    for (const auto& ev : r.events) history.emplace_back(r.revision, ev.kv().key(), ev.type());
  };
  int64_t id = 0;
  for (int step = 0; step < 600; ++step) {
    int op = rng() % 20;
    if (op == 0 && watchers.size() < 24) {
      char a = static_cast<char>('a' + rng() % 6);
      WatchSpec spec{std::string(1, a), rng() % 2 ? std::string(1, static_cast<char>(a + 2)) : ""};
      int64_t now = kv_->View().revision;
      spec.start_revision = now > 0 && rng() % 2 ? 1 + static_cast<int64_t>(rng() % now) : 0;
      if (spec.start_revision == 0) spec.start_revision = now + 1;
      RecordingSink* s = sinks[rng() % sinks.size()].get();
      watchers.push_back({s, ++id, spec});
      AddWatch(s, id, spec);
    } else if (op == 1) {
      sinks[rng() % sinks.size()]->set_stalled(rng() % 2);
    } else if (op < 5) {
      cairnpb::InternalRequest r;
      std::string k(1, static_cast<char>('a' + rng() % 8));
      r.mutable_delete_range()->set_key(k);
      r.mutable_delete_range()->set_range_end(std::string(1, static_cast<char>(k[0] + 2)));
      record(Apply(r));
    } else {
      cairnpb::InternalRequest r;
      r.mutable_put()->set_key(std::string(1, static_cast<char>('a' + rng() % 8)));
      r.mutable_put()->set_value(std::to_string(step));
      record(Apply(r));
    }
  }
  for (auto& s : sinks) s->set_stalled(false);
  hub_->Kick();
  for (const W& w : watchers) {
    std::vector<std::tuple<int64_t, std::string, int>> want;
    for (const auto& e : history) {
      const std::string& k = std::get<1>(e);
      bool in =
          w.spec.range_end.empty() ? k == w.spec.key : (k >= w.spec.key && k < w.spec.range_end);
      if (in && std::get<0>(e) >= w.spec.start_revision) want.push_back(e);
    }
    Eventually([&] { return w.sink->EventsOf(w.id).size() >= want.size(); });
    EXPECT_EQ(w.sink->EventsOf(w.id), want) << "watcher " << w.id;
  }
  for (auto& s : sinks) Eventually([&] { return s->unflushed() == 0; });
}

}  // namespace
}  // namespace cairn::mvcc
