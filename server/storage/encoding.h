// Key encodings of the RocksDB layout; the grammar is docs/keyspace.md. The fixed-width integers
// they are built from are server/base/encoding.h. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::storage {

// ESC(k): 0x00 -> 0x00 0xFF, then the terminator 0x00 0x01. Order-preserving and prefix-free.
void AppendEscaped(std::string* out, std::string_view user_key);
// Inverse of AppendEscaped on a prefix of `in`; sets *consumed to the bytes read (terminator
// included). Returns false if `in` holds no complete escaped key.
bool ParseEscaped(std::string_view in, std::string* user_key, size_t* consumed);

// `index` family key: ESC(key) BE64(~main).
std::string IndexKey(std::string_view user_key, int64_t main);
// The smallest `index` key after every revision of user_key: ESC(key) minus terminator, 0x00 0x02.
std::string IndexKeyAfter(std::string_view user_key);
// `rev` family key: BE64(main) BE64(sub).
std::string RevKey(int64_t main, int64_t sub);

}  // namespace cairn::storage
