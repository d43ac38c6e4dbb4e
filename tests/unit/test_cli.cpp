#include "commands/cli.hpp"

#include <catch2/catch.hpp>

using namespace qkv;

TEST_CASE("cli: layer ranges are half-open, Python style") {
    auto r = parse_layer_range("0:3", 12, "--layers");
    REQUIRE((r.start == 0 && r.stop == 3));
    r = parse_layer_range("all", 12, "--layers");
    REQUIRE((r.start == 0 && r.stop == 12));
    r = parse_layer_range("5", 12, "--layers");
    REQUIRE((r.start == 5 && r.stop == 6));
    r = parse_layer_range(":4", 12, "--layers");
    REQUIRE((r.start == 0 && r.stop == 4));
    r = parse_layer_range("10:", 12, "--layers");
    REQUIRE((r.start == 10 && r.stop == 12));
    r = parse_layer_range("-2:", 12, "--layers");
    REQUIRE((r.start == 10 && r.stop == 12));
    for (const char* bad : {"3:3", "5:2", "0:13", "x", "1:y", "", "12", "1.5"}) {
        INFO(bad);
        REQUIRE_THROWS_AS(parse_layer_range(bad, 12, "--layers"), UsageError);
    }
}

TEST_CASE("cli: shared options and exit codes") {
    CLI::App app{"test", "tool"};
    CommonOptions opt;
    add_common_options(app, opt, kCompute);
    const char* argv[] = {"tool", "--model", "m.h5", "-o", "out.h5", "--threads", "3", "--force"};
    int code = run_tool(app, 8, const_cast<char**>(argv), opt, [] {});
    REQUIRE(code == 0);
    REQUIRE(opt.model == "m.h5");
    REQUIRE(opt.threads == 3);
    REQUIRE(opt.force);
    REQUIRE(opt.command_line == "tool --model m.h5 -o out.h5 --threads 3 --force");

    CLI::App app2{"test", "tool"};
    CommonOptions o2;
    add_common_options(app2, o2, kCompute);
    const char* bad[] = {"tool", "--threads", "x", "--model", "m"};
    REQUIRE(run_tool(app2, 5, const_cast<char**>(bad), o2, [] {}) == 2);

    CLI::App app3{"test", "tool"};
    CommonOptions o3;
    add_common_options(app3, o3, kCompute);
    const char* ok[] = {"tool", "--model", "m"};
    REQUIRE(run_tool(app3, 3, const_cast<char**>(ok), o3, [] { throw FormatError("bad"); }) == 1);
}
