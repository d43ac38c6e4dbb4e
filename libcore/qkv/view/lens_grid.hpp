// lens_grid: the logit lens as a grid, layers down and positions across; each cell the top-1
// next token at that layer's stream, coloured by its probability (viridis, 0 to 1). As PNG or
// SVG, as an HTML page and as text for the terminal.
#pragma once
#include "qkv/view/surface.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct LensGrid {
    std::string title;
    int64_t rows = 0, cols = 0;
    std::vector<std::string> row_labels; // [rows]: which stream ("pre 3", "out")
    std::vector<std::string> col_labels; // [cols]: the input token at each position
    std::vector<std::string> top;        // [rows, cols]: the predicted token's text
    std::vector<double> prob;            // [rows, cols]: its probability
};

// A picture (metadata "qkv-layout": the grid's origin, the cell size); returns the line to print.
std::string draw_lens_grid(const LensGrid& g, const PictureFile& out);
// An HTML page: a table, each cell's token on its colour, its probability on hover.
std::string lens_grid_html(const LensGrid& g);
// For a terminal of the given width: each cell's token on its colour (24-bit), or plain, each
// token followed by its probability.
std::string lens_grid_text(const LensGrid& g, int width, bool color);

} // namespace qkv
