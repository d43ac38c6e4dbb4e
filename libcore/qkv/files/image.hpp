// image: an RGB canvas with a bitmap font (Terminus 8x16, ASCII), colour maps (viridis for
// patterns, a blue-white-red diverging map for signed values) and PNG output through libpng.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qkv {

struct Rgb {
    uint8_t r = 0, g = 0, b = 0;
    bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
};

Rgb viridis(double t);   // t in [0, 1]
Rgb diverging(double t); // t in [-1, 1]: blue for negative, white at 0, red for positive

class Canvas {
  public:
    Canvas(int width, int height, Rgb background = {255, 255, 255});
    int width() const { return w_; }
    int height() const { return h_; }
    void fill(int x, int y, int w, int h, Rgb c);
    void set(int x, int y, Rgb c);
    Rgb at(int x, int y) const;
    // UTF-8 text in the font (8 x 16 a character, glyphs() below; a space drawn as a small dot
    // when visible_spaces). vertical: rotated to read upwards.
    void text(int x, int y, const std::string& s, Rgb c, bool vertical = false,
              bool visible_spaces = false);
    // Pixels text takes: 8 a glyph (a character the font lacks is drawn as \u{XXXX}).
    static int text_width(const std::string& s) {
        return kCharW * static_cast<int>(glyphs(s).size());
    }
    // UTF-8 text as the code points drawn: the font's own (ASCII, Latin-1 and more Latin, Greek,
    // Cyrillic, from Terminus), any other as the characters \u{XXXX}, a byte that is not UTF-8
    // as \x{XX}.
    static std::u32string glyphs(const std::string& s);
    static constexpr int kCharW = 8, kCharH = 16;
    // PNG, atomically written; text chunks (key, value) are stored as tEXt.
    void write_png(const std::string& path,
                   const std::vector<std::pair<std::string, std::string>>& text = {}) const;

  private:
    int w_, h_;
    std::vector<uint8_t> px_; // RGB rows
};

} // namespace qkv
