// Paginated ranges (server/mvcc/range_count_cache.h): a page's `count` is the number of keys of
// the rest of the range at the page's revision, whether it was counted by walking or taken from
// the previous page, while writes go on between the pages.
#include <map>
#include <random>
#include <string>

#include "cairnpb/internal.pb.h"
#include "gtest/gtest.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/range_count_cache.h"
#include "tests/unit/mvcc/apply_util.h"
#include "tests/unit/mvcc/store_fixture.h"

namespace cairn::mvcc {
namespace {

using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;

TEST(RangeCountCacheTest, FindsWhatWasRememberedForThatRangeAndRevisionOnly) {
  RangeCountCache c;
  c.Remember("b", "z", 7, 42);
  EXPECT_EQ(c.Find("b", "z", 7), 42);
  EXPECT_EQ(c.Find("b", "z", 8), std::nullopt);
  EXPECT_EQ(c.Find("b", "y", 7), std::nullopt);
  EXPECT_EQ(c.Find("a", "z", 7), std::nullopt);
  c.Remember("b", "z", 7, 41);  // the same range again replaces its count
  EXPECT_EQ(c.Find("b", "z", 7), 41);
  EXPECT_EQ(c.hits(), 2u);
  c.Clear();
  EXPECT_EQ(c.Find("b", "z", 7), std::nullopt);
  // Ranges with longer keys than the limit are not kept.
  const std::string longest(kRangeCountCacheKeyBytes - 1, 'k');
  c.Remember(longest, "z", 7, 5);
  EXPECT_EQ(c.Find(longest, "z", 7), 5);
  c.Remember(longest + "k", "z", 7, 5);
  EXPECT_EQ(c.Find(longest + "k", "z", 7), std::nullopt);
}

TEST(RangeCountCacheTest, HoldsAtMostItsLimitDroppingTheLeastRecentlyUsed) {
  RangeCountCache c;
  for (size_t i = 0; i < kRangeCountCacheEntries; ++i) {
    c.Remember("k" + std::to_string(i), "z", 1, static_cast<int64_t>(i));
  }
  EXPECT_EQ(c.Find("k0", "z", 1), 0);  // k0 is now the most recently used; k1 the least
  c.Remember("new", "z", 1, 99);
  EXPECT_EQ(c.Find("k1", "z", 1), std::nullopt);
  EXPECT_EQ(c.Find("k0", "z", 1), 0);
  EXPECT_EQ(c.Find("new", "z", 1), 99);
  for (size_t i = 2; i < kRangeCountCacheEntries; ++i) {
    EXPECT_EQ(c.Find("k" + std::to_string(i), "z", 1), static_cast<int64_t>(i)) << i;
  }
}

class PaginatedRangeTest : public testing::StoreFixture {
 protected:
  void Apply(const cairnpb::InternalRequest& r) {
    ApplyResult res = testing::ApplyRequest(kv_.get(), kv_->applied_index() + 1, r);
    ASSERT_TRUE(res.status.ok()) << res.status;
    backend_->Sync();
    kv_->Publish();
  }
  void Put(const std::string& k, const std::string& v) {
    cairnpb::InternalRequest r;
    r.mutable_put()->set_key(k);
    r.mutable_put()->set_value(v);
    Apply(r);
    model_[k] = v;
  }
  void Delete(const std::string& k) {
    cairnpb::InternalRequest r;
    r.mutable_delete_range()->set_key(k);
    Apply(r);
    model_.erase(k);
  }
  RangeResponse Page(const std::string& start, const std::string& end, int64_t limit, int64_t rev) {
    RangeRequest r;
    r.set_key(start);
    r.set_range_end(end);
    r.set_limit(limit);
    r.set_revision(rev);
    auto resp = kv_->Range(kv_->View(), r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : RangeResponse();
  }
  // Checks a page of [start, end) against `model` (the keys at the page's revision).
  static void ExpectPage(const RangeResponse& p, const std::map<std::string, std::string>& model,
                         const std::string& start, const std::string& end, int64_t limit) {
    auto it = model.lower_bound(start);
    auto stop = model.lower_bound(end);
    int64_t count = std::distance(it, stop);
    EXPECT_EQ(p.count(), count) << "page from " << start;
    ASSERT_EQ(p.kvs_size(), std::min(count, limit)) << "page from " << start;
    for (const auto& kv : p.kvs()) {
      EXPECT_EQ(kv.key(), it->first);
      EXPECT_EQ(kv.value(), it->second);
      ++it;
    }
    EXPECT_EQ(p.more(), count > limit) << "page from " << start;
  }

  // Pages through [start, end) `limit` keys at a time at revision `rev` (0: the current one), each
  // page after the previous one's last key, checking each against `model` (null: model_); calls
  // between(page number) after each page. Returns the number of pages.
  template <typename Between>
  int PageThrough(const std::string& start, const std::string& end, int64_t limit, int64_t rev,
                  const std::map<std::string, std::string>* model, Between between) {
    std::string from = start;
    for (int n = 1;; ++n) {
      RangeResponse p = Page(from, end, limit, rev);
      ExpectPage(p, model ? *model : model_, from, end, limit);
      if (::testing::Test::HasFailure() || !p.more()) return n;
      from = p.kvs(p.kvs_size() - 1).key() + std::string(1, '\0');
      between(n);
    }
  }

  std::map<std::string, std::string> model_;
};

std::string Key(int i) {
  char buf[16];
  snprintf(buf, sizeof buf, "k%04d", i);
  return buf;
}

TEST_F(PaginatedRangeTest, PagesAtAPinnedRevisionCountItsKeysWhileTheRangeChanges) {
  for (int i = 0; i < 300; i += 2) Put(Key(i), "v" + std::to_string(i));
  const std::map<std::string, std::string> at_pin = model_;
  int64_t pin = kv_->View().revision;
  std::mt19937 rng(7);
  uint64_t hits = kv_->range_count_hits();
  int pages = PageThrough("k", "l", 7, pin, &at_pin, [&](int) {
    // Keys appear and go inside the range, before and after the next page's start.
    Put(Key(static_cast<int>(rng() % 300)), "new");
    if (!model_.empty()) Delete(std::next(model_.begin(), rng() % model_.size())->first);
  });
  EXPECT_EQ(pages, 22);  // 150 keys, 7 a page
  // Every page after the first took its count from the one before.
  EXPECT_EQ(kv_->range_count_hits() - hits, static_cast<uint64_t>(pages - 1));
  // The same pages again (a client retrying its pagination) read the remembered counts, the
  // first page's included.
  hits = kv_->range_count_hits();
  pages = PageThrough("k", "l", 7, pin, &at_pin, [](int) {});
  EXPECT_EQ(kv_->range_count_hits() - hits, static_cast<uint64_t>(pages));
}

TEST_F(PaginatedRangeTest, PagesAtTheCurrentRevisionCountTheRangeAsItIsNow) {
  for (int i = 0; i < 100; ++i) Put(Key(i), "v");
  uint64_t hits = kv_->range_count_hits();
  // Without writes between the pages, the current revision stays that of the first page.
  int pages = PageThrough("k", "l", 10, 0, nullptr, [](int) {});
  EXPECT_EQ(pages, 10);
  EXPECT_EQ(kv_->range_count_hits() - hits, 9u);
  // With a write between the pages, each page reads a new revision: counted afresh, and right
  // (only the first page, read at the revision of the pass before, finds its count).
  hits = kv_->range_count_hits();
  PageThrough("k", "l", 10, 0, nullptr, [&](int n) {
    if (n % 2) {
      Put(Key(100 + n), "later");  // past every page's start: counted by the next page
    } else {
      Delete(Key(99 - n));
    }
  });
  EXPECT_EQ(kv_->range_count_hits(), hits + 1);
}

TEST_F(PaginatedRangeTest, OtherShapesOfRangeAreCountedByWalking) {
  for (int i = 0; i < 50; ++i) Put(Key(i), "v" + std::to_string(i % 7));
  int64_t pin = kv_->View().revision;
  uint64_t hits = kv_->range_count_hits();
  // A page that does not start where the previous one ended.
  RangeResponse first = Page("k", "l", 10, pin);
  ExpectPage(first, model_, "k", "l", 10);
  RangeResponse skipped = Page(Key(30), "l", 10, pin);
  ExpectPage(skipped, model_, Key(30), "l", 10);
  EXPECT_EQ(kv_->range_count_hits(), hits);
  // That page asked again takes its own count from the first time.
  skipped = Page(Key(30), "l", 10, pin);
  ExpectPage(skipped, model_, Key(30), "l", 10);
  EXPECT_EQ(kv_->range_count_hits(), ++hits);
  // Sorted and filtered pages (walk everything, then sort and cut).
  RangeRequest r;
  r.set_key("k");
  r.set_range_end("l");
  r.set_limit(5);
  r.set_revision(pin);
  r.set_sort_target(RangeRequest::VALUE);
  auto sorted = kv_->Range(kv_->View(), r);
  ASSERT_TRUE(sorted.ok()) << sorted.status();
  EXPECT_EQ(sorted->count(), 50);
  EXPECT_TRUE(sorted->more());
  r.set_key(Key(10) + std::string(1, '\0'));
  sorted = kv_->Range(kv_->View(), r);
  ASSERT_TRUE(sorted.ok()) << sorted.status();
  EXPECT_EQ(sorted->count(), 39);
  // count_only pages and single keys.
  r.Clear();
  r.set_key(Key(10) + std::string(1, '\0'));
  r.set_range_end("l");
  r.set_count_only(true);
  auto counted = kv_->Range(kv_->View(), r);
  ASSERT_TRUE(counted.ok()) << counted.status();
  EXPECT_EQ(counted->count(), 39);
  EXPECT_EQ(kv_->range_count_hits(), hits);
}

TEST_F(PaginatedRangeTest, ACompactedRevisionIsRefusedEvenWithItsCountRemembered) {
  for (int i = 0; i < 30; ++i) Put(Key(i), "v");
  int64_t pin = kv_->View().revision;
  RangeResponse p = Page("k", "l", 10, pin);
  ASSERT_TRUE(p.more());
  Put(Key(0), "again");
  cairnpb::InternalRequest c;
  c.mutable_compaction()->set_revision(pin + 1);
  Apply(c);
  RangeRequest r;
  r.set_key(p.kvs(9).key() + std::string(1, '\0'));
  r.set_range_end("l");
  r.set_limit(10);
  r.set_revision(pin);
  auto resp = kv_->Range(kv_->View(), r);
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.status().ToString().find("compacted"), std::string::npos) << resp.status();
}

}  // namespace
}  // namespace cairn::mvcc
