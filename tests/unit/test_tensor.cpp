#include "qkv/base/errors.hpp"
#include "qkv/tensor/tensor.hpp"

#include <catch2/catch.hpp>

using namespace qkv;

TEST_CASE("tensor: zeros, shape and reshape") {
    Tensor t = Tensor::zeros({2, 3, 4});
    REQUIRE(t.numel() == 24);
    REQUIRE(t.rank() == 3);
    REQUIRE(t.dim(-1) == 4);
    REQUIRE(t.f32()[23] == 0.0f);
    REQUIRE(reinterpret_cast<uintptr_t>(t.f32()) % 64 == 0);
    Tensor r = t.reshaped({6, 4});
    r.f32()[5] = 2.5f;
    REQUIRE(t.f32()[5] == 2.5f); // same storage
    REQUIRE_THROWS_AS(t.reshaped({5, 5}), ShapeError);
    REQUIRE(shape_str({2, 3}) == "[2, 3]");
    REQUIRE_THROWS_AS(Tensor::zeros({-1}), ShapeError);
    REQUIRE(parse_device("cuda") == Device::CUDA);
    REQUIRE_THROWS_AS(parse_device("tpu"), UsageError);
}
