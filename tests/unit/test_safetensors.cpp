#include "qkv/base/errors.hpp"
#include "qkv/files/safetensors.hpp"
#include "qkv/tensor/half.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

using namespace qkv;

TEST_CASE("half and bfloat16 to float and back") {
    REQUIRE(f16_to_f32(0x3c00) == 1.0f);
    REQUIRE(f16_to_f32(0xc000) == -2.0f);
    REQUIRE(f16_to_f32(0x7bff) == 65504.0f);
    REQUIRE(f16_to_f32(0x0001) == Approx(5.960464477539063e-08f)); // smallest subnormal
    REQUIRE(std::isinf(f16_to_f32(0x7c00)));
    REQUIRE(bf16_to_f32(0x3f80) == 1.0f);
    REQUIRE(bf16_to_f32(0xc040) == -3.0f);
}

TEST_CASE("safetensors: header parsing checks offsets, shapes and JSON") {
    auto e = Safetensors::parse_header(
        R"({"__metadata__":{"a":"b"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})", 24,
        "x");
    REQUIRE(e.size() == 1);
    REQUIRE(e["w"].shape == Shape{2, 3});
    REQUIRE_THROWS_AS(Safetensors::parse_header("{", 0, "x"), FormatError);
    REQUIRE_THROWS_AS(Safetensors::parse_header("[]", 0, "x"), FormatError);
    REQUIRE_THROWS_WITH(
        Safetensors::parse_header(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
                                  20, "x"),
        Catch::Contains("outside the file"));
    REQUIRE_THROWS_WITH(
        Safetensors::parse_header(R"({"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,24]}})",
                                  24, "x"),
        Catch::Contains("do not match"));
    REQUIRE_THROWS_AS(Safetensors::parse_header(
                          R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "x"),
                      FormatError);
    REQUIRE_THROWS_AS(
        Safetensors::parse_header(
            R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4,
            "x"),
        FormatError);
}

TEST_CASE("safetensors: reads F32 and F16 tensors from a file") {
    const std::string path = "unit_test.safetensors";
    const std::string header =
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}})";
    {
        std::ofstream f(path, std::ios::binary);
        uint64_t n = header.size();
        f.write(reinterpret_cast<const char*>(&n), 8);
        f << header;
        float a[2] = {1.5f, -2.0f};
        uint16_t b[2] = {0x3c00, 0x4000};
        f.write(reinterpret_cast<const char*>(a), 8);
        f.write(reinterpret_cast<const char*>(b), 4);
    }
    Safetensors s = Safetensors::open(path);
    Tensor a = s.read("a", {2});
    REQUIRE(a.f32()[0] == 1.5f);
    REQUIRE(a.f32()[1] == -2.0f);
    Tensor b = s.read("b", {2});
    REQUIRE(b.f32()[1] == 2.0f);
    REQUIRE_THROWS_AS(s.read("a", {3}), ShapeError);
    REQUIRE_THROWS_WITH(s.read("c", {2}), Catch::Contains("missing tensor 'c'"));
    std::remove(path.c_str());
}
