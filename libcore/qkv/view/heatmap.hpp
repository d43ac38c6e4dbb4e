// heatmap: panels of values over two axes (attention patterns, head grids, 2-D slices,
// attribution and sweep grids) drawn side by side with a colour bar, as PNG or SVG.
#pragma once
#include "qkv/view/surface.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct Heatmap { // one panel
    std::string title;
    int64_t rows = 0, cols = 0;
    std::vector<float> values; // [rows, cols]
    std::vector<bool> masked;  // [rows, cols]: hatched, never coloured
    std::vector<std::string> row_labels, col_labels;
    std::string row_axis, col_axis;
};

// How values become colours: viridis over [0, scale], or the diverging map over
// [-scale, scale] (signed); the colour bar's end is labelled scale_label.
struct ColourScale {
    bool signed_map = false;
    double scale = 1;
    std::string scale_label = "1";
    Rgb colour(double v) const { return signed_map ? diverging(v / scale) : viridis(v / scale); }
};

// Draws the panels (all of one size) in a square-ish grid; the picture's metadata "qkv-layout"
// gives the cell size and each panel's grid origin, so a reader finds a cell's pixels. Returns
// the line to print ("wrote PATH (W x H)").
std::string draw_heatmaps(const std::vector<Heatmap>& panels, const PictureFile& out,
                          const ColourScale& scale);

} // namespace qkv
