#include "qkv/train/adamw.hpp"

#include <catch2/catch.hpp>
#include <cmath>

using namespace qkv;

TEST_CASE("adamw: the schedule warms up linearly, then follows a cosine to min_lr") {
    LrSchedule s{1e-3, 1e-4, 10, 110};
    CHECK(s.at(0) == Approx(1e-3 / 11));
    CHECK(s.at(9) == Approx(1e-3 * 10 / 11));
    CHECK(s.at(10) == Approx(1e-3));
    CHECK(s.at(60) == Approx(1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + std::cos(M_PI * 50 / 99.0))));
    CHECK(s.at(109) == Approx(1e-4));
    for (int64_t i = 11; i < 110; ++i)
        CHECK(s.at(i) <= s.at(i - 1));
}

TEST_CASE("adamw: one step by the formula of torch.optim.AdamW") {
    AdamWConfig c{0.9, 0.95, 1e-8, 0.1};
    float p[2] = {0.5f, -0.25f}, g[2] = {0.1f, -2.0f}, m[2] = {0, 0}, v[2] = {0, 0};
    adamw_update(c, 1e-2, 1, true, p, g, m, v, 2);
    // step 1: m_hat = g, v_hat = g^2, update = lr * sign(g) (up to eps); decay first
    CHECK(p[0] == Approx(0.5 * (1 - 1e-3) - 1e-2).epsilon(1e-6));
    CHECK(p[1] == Approx(-0.25 * (1 - 1e-3) + 1e-2).epsilon(1e-6));
    CHECK(m[0] == Approx(0.01f));
    CHECK(v[1] == Approx(0.05 * 4.0));
    float q = 1.0f, h = 0.0f, mm = 0, vv = 0;
    adamw_update(c, 1e-2, 1, false, &q, &h, &mm, &vv, 1); // no gradient, no decay: unchanged
    CHECK(q == 1.0f);
}

TEST_CASE("adamw: clipping by the global norm") {
    float g[3] = {3.0f, 4.0f, 0.0f};
    CHECK(clip_grad_norm(g, 3, 10.0) == Approx(5.0));
    CHECK(g[0] == 3.0f);
    CHECK(clip_grad_norm(g, 3, 1.0) == Approx(5.0));
    CHECK(std::sqrt(g[0] * g[0] + g[1] * g[1]) == Approx(1.0).epsilon(1e-5));
    CHECK(g[0] / g[1] == Approx(0.75));
}
