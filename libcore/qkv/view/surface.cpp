#include "qkv/view/surface.hpp"

#include "qkv/view/canvas.hpp"
#include "qkv/view/svg.hpp"

namespace qkv {

std::unique_ptr<Surface> make_surface(PictureFile::Format format, int width, int height) {
    if (format == PictureFile::Format::Svg) return std::make_unique<SvgDocument>(width, height);
    return std::make_unique<Canvas>(width, height);
}

size_t utf8_next(const std::string& s, size_t i, char32_t& cp) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (!n || i + n > s.size()) return 0;
    cp = n == 1 ? b : n == 2 ? b & 0x1f : n == 3 ? b & 0x0f : b & 0x07;
    for (size_t k = 1; k < n; ++k) {
        const auto c = static_cast<unsigned char>(s[i + k]);
        if ((c >> 6) != 2) return 0;
        cp = cp << 6 | (c & 0x3f);
    }
    return n;
}

} // namespace qkv
