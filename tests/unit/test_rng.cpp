#include "qkv/base/rng.hpp"

#include <catch2/catch.hpp>
#include <cmath>

using namespace qkv;

TEST_CASE("rng: fixed sequence for a seed, on every platform") {
    Rng a(42), b(42), c(43);
    const uint64_t first = a.next_u64();
    REQUIRE(first == b.next_u64());
    REQUIRE(first != c.next_u64());
    // xoshiro256** seeded by splitmix64(42): a known value pins the algorithm down.
    Rng d(0);
    REQUIRE(d.next_u64() == 0x99ec5f36cb75f2b4ULL);
}

TEST_CASE("rng: uniform in 0..1 and normal with mean 0 and std 1") {
    Rng r(7);
    double sum = 0, sq = 0;
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
        const double u = r.uniform();
        REQUIRE(u >= 0.0);
        REQUIRE(u < 1.0);
        const double x = r.normal();
        sum += x;
        sq += x * x;
    }
    REQUIRE(std::abs(sum / n) < 0.01);
    REQUIRE(std::abs(std::sqrt(sq / n) - 1.0) < 0.01);
}
