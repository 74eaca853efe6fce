#include "server/base/encoding.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace cairn::base {
namespace {

TEST(EncodingTest, BigEndianRoundTripsAndPutsTheMostSignificantByteFirst) {
  std::string be;
  PutBE64(&be, 0x0102030405060708ULL);
  EXPECT_EQ(be, std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(GetBE64(be), 0x0102030405060708ULL);
  PutBE32(&be, 0xA1B2C3D4u);  // appends
  ASSERT_EQ(be.size(), 12u);
  EXPECT_EQ(be.substr(8), "\xA1\xB2\xC3\xD4");
  EXPECT_EQ(GetBE32(std::string_view(be).substr(8)), 0xA1B2C3D4u);
}

TEST(EncodingTest, ByteOrderIsNumericOrder) {
  const uint64_t values[] = {0, 1, 255, 256, 0xFFFFFFFFull, 0x100000000ull, ~0ull};
  for (uint64_t a : values) {
    for (uint64_t b : values) {
      std::string ea, eb;
      PutBE64(&ea, a);
      PutBE64(&eb, b);
      EXPECT_EQ(a < b, ea < eb) << a << " vs " << b;
    }
  }
}

}  // namespace
}  // namespace cairn::base
