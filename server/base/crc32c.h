// CRC-32C (Castagnoli): the checksum of WAL records (docs/wal_format.md).
//
// Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial and final XOR 0xFFFFFFFF, as in iSCSI
// (RFC 3720) and ext4. Uses the SSE4.2 crc32 instruction when the CPU has it, else a portable
// slicing-by-8 table. Thread-safe (pure functions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cairn::base::crc32c {

// Returns the CRC-32C of `crc`'s input followed by data[0, n): Extend(Value(a), b) == Value(a + b).
uint32_t Extend(uint32_t crc, const char* data, size_t n);

inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

// Masked form stored on disk (LevelDB's trick): a CRC computed over data that itself contains
// CRCs is less likely to collide. Unmask(Mask(c)) == c.
inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// For tests: the two implementations directly. HardwareAvailable() says whether ExtendHardware may
// be called.
uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n);
uint32_t ExtendHardware(uint32_t crc, const char* data, size_t n);
bool HardwareAvailable();

}  // namespace cairn::base::crc32c
