#include "qkv/files/image.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/h5file.hpp"

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <png.h>

namespace qkv {

namespace {
#include "qkv/files/font_data.inc"

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

Canvas::Canvas(int width, int height, Rgb bg) : w_(width), h_(height) {
    if (width <= 0 || height <= 0 || static_cast<int64_t>(width) * height > (1 << 26))
        throw UsageError("image of " + std::to_string(width) + " x " + std::to_string(height) +
                         " pixels is out of range");
    px_.resize(static_cast<size_t>(width) * height * 3);
    for (size_t i = 0; i < px_.size(); i += 3) {
        px_[i] = bg.r;
        px_[i + 1] = bg.g;
        px_[i + 2] = bg.b;
    }
}

void Canvas::set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    uint8_t* p = &px_[(static_cast<size_t>(y) * w_ + x) * 3];
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

Rgb Canvas::at(int x, int y) const {
    const uint8_t* p = &px_[(static_cast<size_t>(y) * w_ + x) * 3];
    return {p[0], p[1], p[2]};
}

void Canvas::fill(int x, int y, int w, int h, Rgb c) {
    for (int j = std::max(0, y); j < std::min(h_, y + h); ++j)
        for (int i = std::max(0, x); i < std::min(w_, x + w); ++i)
            set(i, j, c);
}

namespace {

const FontGlyph* find_glyph(char32_t cp) {
    const FontGlyph* end = kFontGlyphs + sizeof kFontGlyphs / sizeof kFontGlyphs[0];
    const FontGlyph* g = std::lower_bound(
        kFontGlyphs, end, cp, [](const FontGlyph& a, char32_t c) { return a.code_point < c; });
    return g != end && g->code_point == cp ? g : nullptr;
}

void append_escape(std::u32string& out, const char* prefix, uint32_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "\\%s{%X}", prefix, static_cast<unsigned>(v));
    for (const char* p = buf; *p; ++p)
        out += static_cast<char32_t>(*p);
}

} // namespace

std::u32string Canvas::glyphs(const std::string& s) {
    std::u32string out;
    for (size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        const int n = b < 0x80         ? 1
                      : (b >> 5) == 6  ? 2
                      : (b >> 4) == 14 ? 3
                      : (b >> 3) == 30 ? 4
                                       : 0;
        char32_t cp = n == 1 ? b : n == 2 ? b & 0x1f : n == 3 ? b & 0x0f : b & 0x07;
        bool ok = n > 0 && i + n <= s.size();
        for (int k = 1; ok && k < n; ++k) {
            const auto c = static_cast<unsigned char>(s[i + k]);
            ok = (c >> 6) == 2;
            cp = cp << 6 | (c & 0x3f);
        }
        if (!ok) { // not UTF-8: the byte itself
            append_escape(out, "x", b);
            ++i;
            continue;
        }
        i += n;
        if (cp >= 32 && find_glyph(cp))
            out += cp;
        else
            append_escape(out, "u", cp);
    }
    return out;
}

void Canvas::text(int x, int y, const std::string& s, Rgb c, bool vertical, bool visible_spaces) {
    const std::u32string text = glyphs(s);
    for (size_t n = 0; n < text.size(); ++n) {
        const char32_t ch = text[n];
        const int ox = vertical ? x : x + static_cast<int>(n) * kCharW;
        const int oy = vertical ? y - static_cast<int>(n) * kCharW : y;
        auto plot = [&](int gx, int gy) { // glyph pixel (gx right, gy down) to the canvas
            if (vertical)
                set(ox + gy, oy - gx, c); // rotated 90 degrees, reading upwards
            else
                set(ox + gx, oy + gy, c);
        };
        if (ch == U' ' && visible_spaces) {
            for (int gy = 8; gy < 10; ++gy)
                for (int gx = 3; gx < 5; ++gx)
                    plot(gx, gy);
            continue;
        }
        const unsigned char* g = find_glyph(ch)->rows; // glyphs() keeps only the font's
        for (int gy = 0; gy < kFontHeight; ++gy)
            for (int gx = 0; gx < 8; ++gx)
                if (g[gy] & (0x80 >> gx)) plot(gx, gy);
    }
}

namespace {
struct PngWrite {
    std::vector<uint8_t> out;
};
void png_write_cb(png_structp png, png_bytep data, png_size_t n) {
    auto* w = static_cast<PngWrite*>(png_get_io_ptr(png));
    w->out.insert(w->out.end(), data, data + n);
}
void png_flush_cb(png_structp) {}
} // namespace

void Canvas::write_png(const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& text) const {
    PngWrite buf;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!png || !info) throw Error("libpng: cannot create a writer");
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        throw IoError(path + ": libpng failed to encode the image");
    }
    png_set_write_fn(png, &buf, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, w_, h_, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    std::vector<png_text> chunks(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
        chunks[i].key = const_cast<char*>(text[i].first.c_str());
        chunks[i].text = const_cast<char*>(text[i].second.c_str());
    }
    if (!chunks.empty()) png_set_text(png, info, chunks.data(), static_cast<int>(chunks.size()));
    png_write_info(png, info);
    for (int y = 0; y < h_; ++y)
        png_write_row(png, const_cast<png_bytep>(&px_[static_cast<size_t>(y) * w_ * 3]));
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    if (is_stdio(path)) throw UsageError("--png needs a file name");
    write_atomic(path, buf.out.data(), buf.out.size());
}

} // namespace qkv
