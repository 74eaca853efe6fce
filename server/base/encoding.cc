#include "server/base/encoding.h"

namespace cairn::base {

void PutBE32(std::string* out, uint32_t x) {
  char buf[4];
  for (int i = 3; i >= 0; --i) {
    buf[i] = static_cast<char>(x & 0xff);
    x >>= 8;
  }
  out->append(buf, 4);
}

void PutBE64(std::string* out, uint64_t x) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(x & 0xff);
    x >>= 8;
  }
  out->append(buf, 8);
}

uint32_t GetBE32(std::string_view in) {
  uint32_t x = 0;
  for (int i = 0; i < 4; ++i) x = (x << 8) | static_cast<unsigned char>(in[i]);
  return x;
}

uint64_t GetBE64(std::string_view in) {
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i) x = (x << 8) | static_cast<unsigned char>(in[i]);
  return x;
}

}  // namespace cairn::base
