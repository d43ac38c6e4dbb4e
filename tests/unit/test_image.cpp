// The font of PNG pictures: UTF-8 text drawn with Terminus's own glyphs (ASCII, Latin-1, Greek,
// Cyrillic), anything else spelled out as \u{...} or \x{..}, never as '?'.
#include "qkv/view/canvas.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace qkv;

TEST_CASE("image: text is drawn by code point, what the font lacks spelled out") {
    CHECK(Canvas::glyphs("a café") == U"a café");
    CHECK(Canvas::glyphs("Ωμέγα") == U"Ωμέγα");
    CHECK(Canvas::glyphs("привет") == U"привет");
    CHECK(Canvas::glyphs("Ġhello") == U"Ġhello"); // GPT-2's space marker
    CHECK(Canvas::glyphs("日") == U"\\u{65E5}");
    CHECK(Canvas::glyphs("\xff!") == U"\\x{FF}!"); // not UTF-8
    CHECK(Canvas::glyphs("\xce") == U"\\x{CE}");   // a code point cut short
    CHECK(Canvas::glyphs("\x01") == U"\\u{1}");    // a control character
    CHECK(Canvas::text_width("Ωж") == 16);
    CHECK(Canvas::text_width("日") == 8 * 8);
}

TEST_CASE("image: a Greek and a Cyrillic letter have glyphs of their own") {
    auto pixels = [](const std::string& s) {
        Canvas c(8, 16);
        c.text(0, 0, s, {0, 0, 0});
        std::vector<int> on;
        for (int y = 0; y < 16; ++y)
            for (int x = 0; x < 8; ++x)
                on.push_back(c.at(x, y).r == 0);
        return on;
    };
    const auto omega = pixels("Ω"), zhe = pixels("ж"), q = pixels("?"), o = pixels("O");
    CHECK(std::count(omega.begin(), omega.end(), 1) > 10);
    CHECK(std::count(zhe.begin(), zhe.end(), 1) > 10);
    CHECK(omega != q);
    CHECK(zhe != q);
    CHECK(omega != o);
}
