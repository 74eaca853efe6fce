#include "server/storage/encoding.h"

#include <random>

#include "gtest/gtest.h"

namespace cairn::storage {
namespace {

std::string RandomKey(std::mt19937& rng) {
  // Small alphabet with 0x00, 0x01, 0x02 and 0xff so escaping edge cases come up often.
  static const char kAlphabet[] = {'\0', '\x01', '\x02', 'a', 'b', '\xff'};
  std::string k(rng() % 5, ' ');
  for (char& c : k) c = kAlphabet[rng() % sizeof(kAlphabet)];
  return k;
}

TEST(EncodingTest, EscapedKeysKeepOrderAndArePrefixFree) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string a = RandomKey(rng), b = RandomKey(rng);
    std::string ea, eb;
    AppendEscaped(&ea, a);
    AppendEscaped(&eb, b);
    EXPECT_EQ(a < b, ea < eb) << "order broken";
    if (a != b) {
      EXPECT_NE(ea.compare(0, eb.size(), eb), 0) << "prefix";
    }
    std::string back;
    size_t consumed = 0;
    ASSERT_TRUE(ParseEscaped(ea + "tail", &back, &consumed));
    EXPECT_EQ(back, a);
    EXPECT_EQ(consumed, ea.size());
  }
}

TEST(EncodingTest, IndexKeysOrderNewestRevisionFirstAndAfterSkipsAllRevisions) {
  EXPECT_LT(IndexKey("k", 9), IndexKey("k", 3));
  EXPECT_LT(IndexKey("k", 1), IndexKeyAfter("k"));
  EXPECT_LT(IndexKeyAfter("k"), IndexKey(std::string("k\0", 2), 100));
  EXPECT_LT(IndexKeyAfter("k"), IndexKey("ka", 100));
  EXPECT_LT(RevKey(1, 5), RevKey(2, 0));
}

TEST(EncodingTest, ParseEscapedRejectsTruncatedInput) {
  std::string out;
  size_t consumed;
  EXPECT_FALSE(ParseEscaped("abc", &out, &consumed));
  EXPECT_FALSE(ParseEscaped(std::string("a\0", 2), &out, &consumed));
  EXPECT_FALSE(ParseEscaped(std::string("a\0\x05", 3), &out, &consumed));
}

}  // namespace
}  // namespace cairn::storage
