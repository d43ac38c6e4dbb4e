#include "qkv/view/canvas.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/h5file.hpp"

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <png.h>

namespace qkv {

namespace {
#include "qkv/view/font_data.inc"

} // namespace

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

void Canvas::hatch(int x, int y, int w, int h) {
    fill(x, y, w, h, kMaskedFill);
    for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i)
            if ((i + j) % 6 == 0) set(x + i, y + j, kMaskedLine);
}

void Canvas::line(int x0, int y0, int x1, int y1, Rgb c, int thick) { // Bresenham
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    while (true) {
        for (int a = 0; a < thick; ++a)
            for (int b = 0; b < thick; ++b)
                set(x0 + a - thick / 2, y0 + b - thick / 2, c);
        if (x0 == x1 && y0 == y1) break;
        const int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
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
        char32_t cp = 0;
        const size_t n = utf8_next(s, i, cp);
        if (!n) { // not UTF-8: the byte itself
            append_escape(out, "x", static_cast<unsigned char>(s[i++]));
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

void Canvas::write_png(const std::string& path, const PictureMeta& text) const {
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
