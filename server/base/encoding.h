// Fixed-width big-endian integers, the building block of every order-preserving byte encoding
// (RocksDB keys and values, snapshot framing). Layout-specific encodings (the key grammar of
// docs/keyspace.md) live with their layout, in server/storage/encoding.h. Pure functions,
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::base {

// Appends x as 4 (resp. 8) bytes big-endian: byte order equals numeric order.
void PutBE32(std::string* out, uint32_t x);
void PutBE64(std::string* out, uint64_t x);
// Reads 4 (resp. 8) bytes big-endian; `in` must hold at least that many bytes.
uint32_t GetBE32(std::string_view in);
uint64_t GetBE64(std::string_view in);

}  // namespace cairn::base
