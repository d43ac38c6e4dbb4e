// coloured_text: a text with each token's background coloured by a value (inspect --text), as
// a picture (PNG or SVG: the tokens in rows that wrap, each on its colour) or an HTML page (each
// token a span, its value on hover).
#pragma once
#include "qkv/view/surface.hpp"

#include <string>
#include <vector>

namespace qkv {

struct ColouredText {
    std::string title, legend;                    // what the values are; what the colours mean
    std::vector<std::vector<std::string>> tokens; // [batch][pos]: each sequence's tokens
    std::vector<std::vector<Rgb>> colours;        // [batch][pos]
    std::vector<std::vector<std::string>> values; // [batch][pos]: each value as text
};

// Black or white, whichever reads on the background.
Rgb ink_on(Rgb background);

std::string draw_coloured_text(const ColouredText& t, const PictureFile& out);
std::string coloured_text_html(const ColouredText& t);

// An HTML document (UTF-8, no network) around body; the text of title escaped.
std::string html_document(const std::string& title, const std::string& style,
                          const std::string& body);
// Text for HTML: & < > " escaped, bytes that are not UTF-8 as \x{XX}.
std::string html_text(const std::string& s);

} // namespace qkv
