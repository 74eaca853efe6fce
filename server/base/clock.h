// Clock: the time source of everything above base. Production code reads time only through a
// Clock it was given (ARCHITECTURE.md, "a deterministic core"), so a simulation can run members on
// simulated time.
//
// Thread safety: Real() is thread-safe; a test clock documents its own contract.
#pragma once

#include <cstdint>

namespace cairn::base {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds since an arbitrary origin.
  virtual int64_t NowMs() = 0;
  // Milliseconds since the Unix epoch (for ids that must differ across restarts).
  virtual int64_t WallMs() = 0;
  // The process's real clock (std::chrono::steady_clock / system_clock). Never deleted.
  static Clock* Real();
};

}  // namespace cairn::base
