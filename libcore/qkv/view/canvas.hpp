// canvas: a Surface of RGB pixels with a bitmap font (Terminus 8x16: ASCII, Latin-1 and more
// Latin, Greek, Cyrillic) and PNG output through libpng.
#pragma once
#include "qkv/view/surface.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

class Canvas : public Surface {
  public:
    Canvas(int width, int height, Rgb background = {255, 255, 255});
    int width() const override { return w_; }
    int height() const override { return h_; }
    void fill(int x, int y, int w, int h, Rgb c) override;
    void hatch(int x, int y, int w, int h) override;
    void line(int x0, int y0, int x1, int y1, Rgb c, int thick = 1) override;
    void text(int x, int y, const std::string& s, Rgb c, bool vertical = false,
              bool visible_spaces = false) override;
    void write(const std::string& path, const PictureMeta& meta) const override {
        write_png(path, meta);
    }
    void set(int x, int y, Rgb c);
    Rgb at(int x, int y) const;
    // Pixels text takes: 8 a glyph (a character the font lacks is drawn as \u{XXXX}).
    static int text_width(const std::string& s) {
        return kCharW * static_cast<int>(glyphs(s).size());
    }
    // UTF-8 text as the code points drawn: the font's own, any other as the characters
    // \u{XXXX}, a byte that is not UTF-8 as \x{XX}.
    static std::u32string glyphs(const std::string& s);
    // PNG, atomically written; meta (key, value) pairs are stored as tEXt chunks.
    void write_png(const std::string& path, const PictureMeta& meta = {}) const;

  private:
    int w_, h_;
    std::vector<uint8_t> px_; // RGB rows
};

} // namespace qkv
