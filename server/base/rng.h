// Rng: the seedable random source of the server. Code that needs randomness which a test or a
// simulation must be able to replay (Raft's election jitter, fault injection) draws from an Rng it
// was given, never from std::random_device or a global generator.
//
// Thread safety: not thread-safe; one owner. Not cryptographic.
#pragma once

#include <cstdint>

namespace cairn::base {

// A small deterministic PRNG (splitmix64): the same seed gives the same sequence on every
// platform and build.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  uint64_t Uniform(uint64_t n) { return Next() % n; }
  // True with probability p (0 <= p <= 1).
  bool Bernoulli(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t state_;
};

}  // namespace cairn::base
