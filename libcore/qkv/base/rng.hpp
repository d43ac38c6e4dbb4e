// rng: our own small seeded generator (xoshiro256** seeded by splitmix64), so that a seed
// gives the same numbers with every compiler and standard library; std:: distributions don't.
#pragma once
#include <cstdint>

namespace qkv {

class Rng {
  public:
    explicit Rng(uint64_t seed);
    uint64_t next_u64();
    double uniform(); // [0, 1), 53 random bits
    double normal();  // standard normal, Box-Muller (both values of a pair are used)

  private:
    uint64_t s_[4];
    bool has_spare_ = false;
    double spare_ = 0;
};

} // namespace qkv
