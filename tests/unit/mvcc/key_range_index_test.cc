// KeyRangeIndex: the watcher range index of WatchHub::Notify. Checked case by case (single keys,
// overlapping prefixes, from-key ranges, empty ranges, removal) and against a brute-force model
// over random ranges, adds and removes.
#include "server/mvcc/key_range_index.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cairn::mvcc {
namespace {

struct Item {
  std::string key;
  std::string end;
};

std::set<const Item*> Containing(const KeyRangeIndex<Item>& index, const std::string& key) {
  std::set<const Item*> out;
  index.ForEachContaining(key, [&](Item* it) { EXPECT_TRUE(out.insert(it).second) << "twice"; });
  return out;
}

// etcd's range semantics, the model.
bool InRange(const Item& it, const std::string& key) {
  if (it.end.empty()) return key == it.key;
  if (key < it.key) return false;
  if (it.end == std::string(1, '\0')) return true;
  return key < it.end;
}

TEST(KeyRangeIndexTest, SingleKeysPrefixesFromKeyAndEmptyRanges) {
  KeyRangeIndex<Item> index;
  Item exact{"foo", ""};
  Item exact_twin{"foo", ""};
  Item p_f{"f", "g"};                                    // prefix "f"
  Item p_fo{"fo", "fp"};                                 // prefix "fo", inside "f"
  Item p_foo{"foo", "fop"};                              // prefix "foo"
  Item from_fo{"fo", std::string(1, '\0')};              // every key >= "fo"
  Item all{std::string(1, '\0'), std::string(1, '\0')};  // every key
  Item empty{"z", "a"};                                  // range_end <= key: nothing
  for (Item* it : {&exact, &exact_twin, &p_f, &p_fo, &p_foo, &from_fo, &all, &empty}) {
    index.Add(it->key, it->end, it);
  }
  EXPECT_EQ(index.size(), 8u);

  EXPECT_EQ(Containing(index, "foo"),
            (std::set<const Item*>{&exact, &exact_twin, &p_f, &p_fo, &p_foo, &from_fo, &all}));
  EXPECT_EQ(Containing(index, "foo\x01"),
            (std::set<const Item*>{&p_f, &p_fo, &p_foo, &from_fo, &all}));
  EXPECT_EQ(Containing(index, "fp"), (std::set<const Item*>{&p_f, &from_fo, &all}));
  EXPECT_EQ(Containing(index, "g"), (std::set<const Item*>{&from_fo, &all}));
  EXPECT_EQ(Containing(index, "a"), (std::set<const Item*>{&all}));
  EXPECT_EQ(Containing(index, "z"), (std::set<const Item*>{&from_fo, &all}));

  EXPECT_TRUE(index.Remove("foo", "", &exact));
  EXPECT_FALSE(index.Remove("foo", "", &exact));  // gone already
  EXPECT_TRUE(index.Remove("fo", "fp", &p_fo));
  EXPECT_FALSE(index.Remove("fo", "fp", &p_foo));  // registered under another range
  EXPECT_TRUE(index.Remove(all.key, all.end, &all));
  EXPECT_EQ(index.size(), 5u);
  EXPECT_EQ(Containing(index, "foo"), (std::set<const Item*>{&exact_twin, &p_f, &p_foo, &from_fo}));
  EXPECT_EQ(Containing(index, "a"), (std::set<const Item*>{}));

  std::set<const Item*> every;
  index.ForEach([&](Item* it) { every.insert(it); });
  EXPECT_EQ(every, (std::set<const Item*>{&exact_twin, &p_f, &p_foo, &from_fo, &empty}));
}

TEST(KeyRangeIndexTest, SameRangeManyItems) {
  KeyRangeIndex<Item> index;
  std::vector<Item> items(100, Item{"a/", "a0"});
  for (Item& it : items) index.Add(it.key, it.end, &it);
  EXPECT_EQ(Containing(index, "a/x").size(), 100u);
  for (size_t i = 0; i < items.size(); i += 2) {
    ASSERT_TRUE(index.Remove(items[i].key, items[i].end, &items[i]));
  }
  std::set<const Item*> got = Containing(index, "a/x");
  EXPECT_EQ(got.size(), 50u);
  for (size_t i = 1; i < items.size(); i += 2) EXPECT_TRUE(got.count(&items[i]));
}

std::string RandomKey(std::mt19937& rng) {
  static const char kAlphabet[] = {'\0', 'a', 'b', 'c', '\xff'};
  std::string k;
  size_t len = rng() % 4;
  for (size_t i = 0; i < len; ++i) k.push_back(kAlphabet[rng() % sizeof(kAlphabet)]);
  return k;
}

TEST(KeyRangeIndexTest, MatchesBruteForceOverRandomChanges) {
  std::mt19937 rng(17);
  std::vector<Item> items(400);
  for (Item& it : items) {
    it.key = RandomKey(rng);
    if (it.key.empty()) it.key = "a";
    switch (rng() % 4) {
      case 0:
        it.end = "";
        break;
      case 1:
        it.end = std::string(1, '\0');
        break;
      case 2: {  // a prefix range
        it.end = it.key;
        while (!it.end.empty() && static_cast<unsigned char>(it.end.back()) == 0xff) {
          it.end.pop_back();
        }
        if (it.end.empty()) {
          it.end = std::string(1, '\0');
        } else {
          it.end.back() = static_cast<char>(static_cast<unsigned char>(it.end.back()) + 1);
        }
        break;
      }
      default:
        it.end = RandomKey(rng);
        if (it.end.empty()) it.end = "c";
    }
  }
  KeyRangeIndex<Item> index;
  std::set<Item*> in;
  for (int step = 0; step < 3000; ++step) {
    Item* it = &items[rng() % items.size()];
    if (in.count(it)) {
      ASSERT_TRUE(index.Remove(it->key, it->end, it));
      in.erase(it);
    } else {
      index.Add(it->key, it->end, it);
      in.insert(it);
    }
    ASSERT_EQ(index.size(), in.size());
    if (step % 10 != 0) continue;
    for (int q = 0; q < 20; ++q) {
      std::string key = RandomKey(rng);
      std::set<const Item*> want;
      for (Item* x : in) {
        if (InRange(*x, key)) want.insert(x);
      }
      ASSERT_EQ(Containing(index, key), want) << "step " << step << " key size " << key.size();
    }
  }
}

}  // namespace
}  // namespace cairn::mvcc
