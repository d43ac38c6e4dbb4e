// svg: a Surface that writes an SVG document: rectangles (a row's run of cells of one colour
// merged into one), lines (joined into polylines), hatching as a pattern and the text as text,
// in any script the viewer's fonts have. A monospace font at 13.3 px advances 8 px a character,
// as the bitmap font does, so labels take the PNG's place.
#pragma once
#include "qkv/view/surface.hpp"

#include <string>

namespace qkv {

class SvgDocument : public Surface {
  public:
    SvgDocument(int width, int height);
    int width() const override { return w_; }
    int height() const override { return h_; }
    void fill(int x, int y, int w, int h, Rgb c) override;
    void hatch(int x, int y, int w, int h) override;
    void line(int x0, int y0, int x1, int y1, Rgb c, int thick = 1) override;
    void text(int x, int y, const std::string& s, Rgb c, bool vertical = false,
              bool visible_spaces = false) override;
    void write(const std::string& path, const PictureMeta& meta) const override;
    // The whole document as written.
    std::string document(const PictureMeta& meta) const;

  private:
    struct Run { // the rectangle or polyline being extended
        enum Kind { None, Rect, Hatch, Poly } kind = None;
        int x = 0, y = 0, w = 0, h = 0, thick = 1;
        Rgb c;
        std::string points;
        int last_x = 0, last_y = 0;
    };
    static std::string element(const Run& run); // the SVG of a finished run
    void flush();
    int w_, h_;
    Run run_;
    std::string body_;
};

// Text as XML character data: & < > " escaped; a byte that is not UTF-8 written as \x{XX} and
// a code point XML cannot hold (controls, surrogates) as \u{XXXX}.
std::string xml_text(const std::string& s);

} // namespace qkv
