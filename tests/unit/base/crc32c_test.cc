#include "server/base/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace cairn::base::crc32c {
namespace {

// Vectors from RFC 3720 (iSCSI), appendix B.4, and the common "123456789" check value.
TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Value(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Value(ascending), 0x46DD794Eu);
  EXPECT_EQ(Value(descending), 0x113FDB5Cu);
  EXPECT_EQ(Value(""), 0u);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  for (size_t split : {0u, 1u, 7u, 8u, 9u, 500u, 999u, 1000u}) {
    uint32_t part = Value(data.data(), split);
    EXPECT_EQ(Extend(part, data.data() + split, data.size() - split), Value(data)) << split;
  }
}

TEST(Crc32cTest, PortableAndHardwareAgree) {
  std::string data;
  for (int i = 0; i < 4099; ++i) data.push_back(static_cast<char>((i * 131) ^ (i >> 3)));
  // Every length and misalignment up to a few words, and a long run.
  for (size_t start = 0; start < 9; ++start) {
    for (size_t n = 0; n + start <= 80; ++n) {
      uint32_t portable = ExtendPortable(0, data.data() + start, n);
      if (HardwareAvailable()) {
        ASSERT_EQ(ExtendHardware(0, data.data() + start, n), portable) << start << " " << n;
      }
      ASSERT_EQ(Extend(0, data.data() + start, n), portable);
    }
  }
  EXPECT_EQ(ExtendPortable(0, data.data(), data.size()), Extend(0, data.data(), data.size()));
  EXPECT_EQ(ExtendPortable(0, "123456789", 9), 0xE3069283u);
}

TEST(Crc32cTest, MaskRoundTripsAndDiffers) {
  for (uint32_t crc : {0u, 1u, 0xE3069283u, 0xFFFFFFFFu}) {
    EXPECT_EQ(Unmask(Mask(crc)), crc);
    EXPECT_NE(Mask(crc), crc);
  }
}

}  // namespace
}  // namespace cairn::base::crc32c
