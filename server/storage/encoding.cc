#include "server/storage/encoding.h"

#include <limits>

#include "server/base/encoding.h"

namespace cairn::storage {

using base::PutBE64;

void AppendEscaped(std::string* out, std::string_view user_key) {
  for (char c : user_key) {
    out->push_back(c);
    if (c == '\0') out->push_back('\xff');
  }
  out->push_back('\0');
  out->push_back('\x01');
}

bool ParseEscaped(std::string_view in, std::string* user_key, size_t* consumed) {
  user_key->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\0') {
      user_key->push_back(in[i]);
      continue;
    }
    if (i + 1 >= in.size()) return false;
    if (in[i + 1] == '\x01') {
      *consumed = i + 2;
      return true;
    }
    if (in[i + 1] != '\xff') return false;
    user_key->push_back('\0');
    ++i;
  }
  return false;
}

std::string IndexKey(std::string_view user_key, int64_t main) {
  std::string out;
  out.reserve(user_key.size() + 10);
  AppendEscaped(&out, user_key);
  PutBE64(&out, std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(main));
  return out;
}

std::string IndexKeyAfter(std::string_view user_key) {
  std::string out;
  AppendEscaped(&out, user_key);
  out.back() = '\x02';
  return out;
}

std::string RevKey(int64_t main, int64_t sub) {
  std::string out;
  out.reserve(16);
  PutBE64(&out, static_cast<uint64_t>(main));
  PutBE64(&out, static_cast<uint64_t>(sub));
  return out;
}

}  // namespace cairn::storage
