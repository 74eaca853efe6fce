// PrefixCache: initial contents, changes applied in order and reported to listeners, keys
// outside the prefix ignored, and a resync (with a correct difference) after the watch's history
// was compacted while the client was cut off.
#include "cairn/recipes/prefix_cache.h"

#include <cstdio>
#include <mutex>

#include <gtest/gtest.h>

#include "tests/recipes/recipes_test_util.h"
#include "tests/recipes/tcp_proxy.h"

namespace cairn::recipes_test {
namespace {

using recipes::PrefixCache;

class PrefixCacheTest : public RecipeTest {};

TEST_P(PrefixCacheTest, MirrorsThePrefix) {
  ASSERT_TRUE(client_->kv().Put("cache/a", "1").ok());
  ASSERT_TRUE(client_->kv().Put("cache/b", "2").ok());
  ASSERT_TRUE(client_->kv().Put("other", "x").ok());
  auto cache = PrefixCache::Start(*client_, "cache/", Within(10000));
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ((*cache)->size(), 2u);
  ASSERT_TRUE((*cache)->Get("cache/a").has_value());
  EXPECT_EQ((*cache)->Get("cache/a")->value, "1");

  std::mutex mu;
  std::vector<std::string> log;
  (*cache)->AddListener([&](const std::vector<Event>& events, Revision, bool resync) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& e : events) {
      log.push_back(std::string(resync ? "R" : "") + (e.type == EventType::kPut ? "put " : "del ") +
                    e.kv.key);
    }
  });
  ASSERT_TRUE(client_->kv().Put("cache/c", "3").ok());
  ASSERT_TRUE(client_->kv().Put("other2", "y").ok());
  auto del = client_->kv().Delete("cache/a");
  ASSERT_TRUE(del.ok());
  ASSERT_TRUE((*cache)->WaitForRevision(del->header.revision, Within(20000)).ok());
  EXPECT_FALSE((*cache)->Get("cache/a").has_value());
  EXPECT_EQ((*cache)->Get("cache/c")->value, "3");
  EXPECT_FALSE((*cache)->Get("other2").has_value());
  auto list = (*cache)->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].key, "cache/b");
  EXPECT_EQ(list[1].key, "cache/c");
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(log, (std::vector<std::string>{"put cache/c", "del cache/a"}));
}

TEST_P(PrefixCacheTest, ResyncsAfterCompaction) {
  // The cache's client reaches the server through a proxy we can cut.
  std::string ep = cluster_->ClientEndpoint(0);
  TcpProxy proxy(std::stoi(ep.substr(ep.rfind(':') + 1)));
  ClientOptions o;
  o.endpoints = {proxy.endpoint()};
  o.default_timeout = std::chrono::milliseconds(15000);
  auto cut_off = Client::Connect(o);
  ASSERT_TRUE(cut_off.ok()) << cut_off.status();
  ASSERT_TRUE(client_->kv().Put("cache/keep", "1").ok());
  ASSERT_TRUE(client_->kv().Put("cache/drop", "1").ok());
  auto cache = PrefixCache::Start(**cut_off, "cache/", Within(10000));
  ASSERT_TRUE(cache.ok()) << cache.status();
  std::mutex mu;
  std::vector<std::string> resync_log;
  (*cache)->AddListener([&](const std::vector<Event>& events, Revision, bool resync) {
    if (!resync) return;
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& e : events) {
      resync_log.push_back((e.type == EventType::kPut ? "put " : "del ") + e.kv.key);
    }
  });
  // Cut the cache off, change and compact the history its watch would resume from, reconnect:
  // the resumed watch is refused (compacted) and the cache reads the prefix again.
  proxy.Cut();
  ASSERT_TRUE(client_->kv().Delete("cache/drop").ok());
  ASSERT_TRUE(client_->kv().Put("cache/new", "2").ok());
  auto last = client_->kv().Put("cache/keep", "3");
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(client_->kv().Compact(last->header.revision).ok());
  proxy.Restore();

  ASSERT_TRUE((*cache)->WaitForRevision(last->header.revision, Within(30000)).ok())
      << (*cache)->status();
  EXPECT_EQ((*cache)->resyncs(), 1);
  auto list = (*cache)->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].key, "cache/keep");
  EXPECT_EQ(list[0].value, "3");
  EXPECT_EQ(list[1].key, "cache/new");
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(resync_log,
            (std::vector<std::string>{"del cache/drop", "put cache/keep", "put cache/new"}));
}

TEST_P(PrefixCacheTest, ReadsALargePrefixInPages) {
  constexpr int kKeys = 2150;  // more than two pages of 1,000
  for (int base = 0; base < kKeys; base += 100) {
    std::vector<Op> puts;
    for (int i = base; i < base + 100 && i < kKeys; ++i) {
      char key[32];
      std::snprintf(key, sizeof(key), "big/%05d", i);
      puts.push_back(Op::Put(key, std::to_string(i)));
    }
    Txn t;
    t.Then(std::move(puts));
    ASSERT_TRUE(client_->kv().Commit(t).ok());
  }
  ASSERT_TRUE(client_->kv().Put("big0", "outside").ok());
  auto cache = PrefixCache::Start(*client_, "big/", Within(20000));
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ((*cache)->size(), static_cast<size_t>(kKeys));
  auto list = (*cache)->List();
  ASSERT_EQ(list.size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(list.front().key, "big/00000");
  EXPECT_EQ(list.back().key, "big/02149");
  auto put = client_->kv().Put("big/zzz", "new");
  ASSERT_TRUE(put.ok());
  ASSERT_TRUE((*cache)->WaitForRevision(put->header.revision, Within(20000)).ok());
  EXPECT_EQ((*cache)->size(), static_cast<size_t>(kKeys + 1));
}

INSTANTIATE_TEST_SUITE_P(Servers, PrefixCacheTest,
                         ::testing::ValuesIn(cairn::testing::TestedServerKinds()), KindName);

}  // namespace
}  // namespace cairn::recipes_test
