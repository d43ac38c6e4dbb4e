// html_page: one self-contained HTML file (data and script inline, no network) for a browser:
// the attention pattern of every head of a layer as small multiples drawn on canvases, a head
// enlarged on click, a cell's query token, key token and weight on hover, a token's row and
// column lit on hover. Canvases, not a DOM node a cell, so that long inputs stay usable.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct PatternPage {
    std::string title;
    std::vector<int64_t> heads;      // which heads, in order
    int64_t rows = 0, cols = 0;      // query and key positions
    std::vector<std::string> tokens; // [pos]: each position's token text (may be empty)
    std::vector<float> values;       // [head, query_pos, key_pos], in [0, 1]
    std::vector<bool> masked;        // [head, query_pos, key_pos]
};

// The page as text; the weights are kept to 1/65534 (the hover shows 4 decimals), the colours
// are the PNG's viridis, sampled at 1024 points.
std::string pattern_page(const PatternPage& p);
// Writes a page (this one, the lens grid's, a coloured text's) atomically; returns the line to
// print.
std::string write_html(const std::string& path, const std::string& page);

} // namespace qkv
