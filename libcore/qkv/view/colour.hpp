// colour: the colour maps of every picture (PNG, SVG, HTML and the terminal use the same ones).
#pragma once
#include <cstdint>
#include <string>

namespace qkv {

struct Rgb {
    uint8_t r = 0, g = 0, b = 0;
    bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
};

Rgb viridis(double t);   // t in [0, 1]: matplotlib's viridis, dark blue to yellow
Rgb diverging(double t); // t in [-1, 1]: blue for negative, white at 0, red for positive
std::string hex(Rgb c);  // "#rrggbb"

// Masked or padded cells: light grey hatched with darker diagonals, never confused with a value.
constexpr Rgb kMaskedFill{225, 225, 225}, kMaskedLine{170, 170, 170};

} // namespace qkv
