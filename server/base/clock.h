// Clock: the time source of everything above base. Production code reads time only through a
// Clock it was given (ARCHITECTURE.md, "a deterministic core"), so a simulation can run members on
// simulated time.
//
// Thread safety: Real() is thread-safe; a test clock documents its own contract.
#pragma once

#include <atomic>
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

// A clock that moves only when told to. Thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1) : now_ms_(start_ms) {}
  int64_t NowMs() override;
  int64_t WallMs() override;
  void Advance(int64_t ms);

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace cairn::base
