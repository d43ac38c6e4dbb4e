// surface: what a picture is drawn on. The same drawing code (heatmap, loss_curve) makes a PNG
// (Canvas: pixels and the Terminus bitmap font) and an SVG (SvgDocument: shapes and real text),
// so both have the same layout at the same coordinates: a glyph box is 8 x 16, (x, y) its top
// left; vertical text reads upwards from (x, y).
#pragma once
#include "qkv/view/colour.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace qkv {

using PictureMeta = std::vector<std::pair<std::string, std::string>>; // (key, value)

class Surface {
  public:
    virtual ~Surface() = default;
    virtual int width() const = 0;
    virtual int height() const = 0;
    virtual void fill(int x, int y, int w, int h, Rgb c) = 0;
    // A masked or padded cell (kMaskedFill hatched with kMaskedLine).
    virtual void hatch(int x, int y, int w, int h) = 0;
    virtual void line(int x0, int y0, int x1, int y1, Rgb c, int thick = 1) = 0;
    // UTF-8 text; visible_spaces: a space drawn as a small dot (token labels).
    virtual void text(int x, int y, const std::string& s, Rgb c, bool vertical = false,
                      bool visible_spaces = false) = 0;
    // Writes the picture atomically; meta travels with it (PNG tEXt chunks, SVG <metadata>).
    virtual void write(const std::string& path, const PictureMeta& meta) const = 0;
    static constexpr int kCharW = 8, kCharH = 16;
};

// Where a picture goes and as what.
struct PictureFile {
    enum class Format { Png, Svg } format = Format::Png;
    std::string path;
};

std::unique_ptr<Surface> make_surface(PictureFile::Format format, int width, int height);

// The UTF-8 character at s[i]: its code point in cp and its length, or 0 when s[i] does not
// start a valid character (a stray or truncated byte).
size_t utf8_next(const std::string& s, size_t i, char32_t& cp);

} // namespace qkv
