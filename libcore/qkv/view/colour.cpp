#include "qkv/view/colour.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace qkv {

namespace {

uint8_t to8(double v) {
    return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255));
}

} // namespace

Rgb viridis(double t) {
    // Polynomial fit of matplotlib's viridis (max error below 1/255 in each channel).
    t = std::clamp(t, 0.0, 1.0);
    static const double c[7][3] = {{0.2777273272234177, 0.005407344544966578, 0.3340998053353061},
                                   {0.1050930431085774, 1.404613529898575, 1.384590162594685},
                                   {-0.3308618287255563, 0.214847559468213, 0.09509516302823659},
                                   {-4.634230498983486, -5.799100973351585, -19.33244095627987},
                                   {6.228269936347081, 14.17993336680509, 56.69055260068105},
                                   {4.776384997670288, -13.74514537774601, -65.35303263337234},
                                   {-5.435455855934631, 4.645852612178535, 26.3124352495832}};
    double v[3];
    for (int k = 0; k < 3; ++k) {
        double acc = c[6][k];
        for (int i = 5; i >= 0; --i)
            acc = acc * t + c[i][k];
        v[k] = acc;
    }
    return {to8(v[0]), to8(v[1]), to8(v[2])};
}

Rgb diverging(double t) {
    // ColorBrewer RdBu, reversed so that negative is blue: 11 anchors from -1 to 1.
    static const Rgb a[11] = {{5, 48, 97},     {33, 102, 172},  {67, 147, 195},  {146, 197, 222},
                              {209, 229, 240}, {247, 247, 247}, {253, 219, 199}, {244, 165, 130},
                              {214, 96, 77},   {178, 24, 43},   {103, 0, 31}};
    t = std::clamp(t, -1.0, 1.0);
    const double x = (t + 1) * 5;
    const int i = std::min(9, static_cast<int>(x));
    const double f = x - i;
    auto mix = [&](uint8_t p, uint8_t q) {
        return static_cast<uint8_t>(std::lround(p + (q - p) * f));
    };
    return {mix(a[i].r, a[i + 1].r), mix(a[i].g, a[i + 1].g), mix(a[i].b, a[i + 1].b)};
}

std::string hex(Rgb c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
    return buf;
}

} // namespace qkv
