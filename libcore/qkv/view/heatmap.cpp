#include "qkv/view/heatmap.hpp"

#include "qkv/view/canvas.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace qkv {

namespace {

const Rgb kInk{20, 20, 20}, kAxisInk{90, 90, 90};

void draw_panel(Surface& s, int x0, int y0, const Heatmap& h, int cell, int label_w,
                const ColourScale& scale) {
    s.text(x0, y0, h.title, kInk);
    const int gx = x0 + label_w + 18, gy = y0 + 24; // the grid's top left
    s.text(x0, gy + static_cast<int>(h.rows) * cell / 2 + 4 * 8, h.row_axis, kAxisInk, true);
    for (int64_t r = 0; r < h.rows; ++r) {
        const std::string& l = h.row_labels[r];
        s.text(gx - 4 - Canvas::text_width(l), gy + static_cast<int>(r) * cell + (cell - 16) / 2, l,
               kInk, false, true);
        for (int64_t k = 0; k < h.cols; ++k) {
            const int x = gx + static_cast<int>(k) * cell, y = gy + static_cast<int>(r) * cell;
            if (h.masked[r * h.cols + k])
                s.hatch(x, y, cell, cell);
            else
                s.fill(x, y, cell, cell, scale.colour(h.values[r * h.cols + k]));
        }
    }
    for (int64_t k = 0; k < h.cols; ++k) { // column labels, reading upwards, below the grid
        const std::string& l = h.col_labels[k];
        s.text(gx + static_cast<int>(k) * cell + (cell - 16) / 2,
               gy + static_cast<int>(h.rows) * cell + 4 + Canvas::text_width(l), l, kInk, true,
               true);
    }
    s.text(gx, gy + static_cast<int>(h.rows) * cell + label_w + 8, h.col_axis, kAxisInk);
}

void draw_colour_bar(Surface& s, int bx, int by, int bh, const ColourScale& scale) {
    for (int j = 0; j < bh; ++j) {
        const double t = 1.0 - double(j) / (bh - 1);
        s.fill(bx, by + j, 16, 1, scale.signed_map ? diverging(2 * t - 1) : viridis(t));
    }
    const std::string& l = scale.scale_label;
    s.text(bx + 20, by - 4, scale.signed_map ? "+" + l : l, kInk);
    s.text(bx + 20, by + bh - 12, scale.signed_map ? "-" + l : "0", kInk);
    if (scale.signed_map) {
        s.text(bx + 20, by + bh / 2 - 8, "0", kInk);
        return;
    }
    s.hatch(bx, by + bh + 12, 16, 16);
    s.text(bx + 20, by + bh + 12, "masked", kInk);
}

} // namespace

std::string draw_heatmaps(const std::vector<Heatmap>& panels, const PictureFile& out,
                          const ColourScale& scale) {
    const int64_t rows = panels[0].rows, cols = panels[0].cols;
    int cell = static_cast<int>(std::clamp<int64_t>(480 / std::max<int64_t>(rows, cols), 4, 32));
    if (panels.size() > 1) cell = std::max(4, cell * 2 / 3);
    size_t longest = 0;
    for (auto& p : panels)
        for (auto* v : {&p.row_labels, &p.col_labels})
            for (auto& l : *v)
                longest = std::max(longest, l.size());
    const int label_w = 8 * static_cast<int>(longest) + 4;
    const int panel_w = label_w + 18 + static_cast<int>(cols) * cell + 24;
    const int title_w = 8 * static_cast<int>(panels[0].title.size()) + 8;
    const int pw = std::max(panel_w, title_w);
    const int ph = 24 + static_cast<int>(rows) * cell + label_w + 32;
    const int ncols = static_cast<int>(std::ceil(std::sqrt(double(panels.size()))));
    const int nrows = static_cast<int>((panels.size() + ncols - 1) / ncols);
    const int bar_w = 90;
    std::unique_ptr<Surface> s = make_surface(out.format, 8 + ncols * pw + bar_w, 8 + nrows * ph);
    nlohmann::json layout = {{"cell", cell}, {"rows", rows}, {"cols", cols}};
    nlohmann::json origins = nlohmann::json::array();
    for (size_t i = 0; i < panels.size(); ++i) {
        const int x0 = 8 + static_cast<int>(i % ncols) * pw,
                  y0 = 8 + static_cast<int>(i / ncols) * ph;
        draw_panel(*s, x0, y0, panels[i], cell, label_w, scale);
        origins.push_back({{"x", x0 + label_w + 18}, {"y", y0 + 24}});
    }
    layout["panels"] = origins;
    draw_colour_bar(*s, 8 + ncols * pw + 8, 32, std::max(64, static_cast<int>(rows) * cell), scale);
    s->write(out.path, {{"Software", "qkv inspect"}, {"qkv-layout", layout.dump()}});
    return "wrote " + out.path + " (" + std::to_string(s->width()) + " x " +
           std::to_string(s->height()) + ")\n";
}

} // namespace qkv
