#include "qkv/view/lens_grid.hpp"

#include "qkv/view/canvas.hpp"
#include "qkv/view/coloured_text.hpp"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

namespace qkv {

namespace {

const Rgb kInk{20, 20, 20};
constexpr int kCellChars = 8; // a cell shows up to 8 characters of its token

// The text of a token as a label: newlines and tabs visible, at most n characters (cut to
// n - 1 and '~').
std::string label(const std::string& s, size_t n) {
    std::string o;
    for (char c : s)
        o += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : std::string(1, c);
    std::vector<size_t> starts; // where each character begins
    for (size_t i = 0; i < o.size();) {
        starts.push_back(i);
        char32_t cp = 0;
        i += std::max<size_t>(1, utf8_next(o, i, cp));
    }
    return starts.size() <= n ? o : o.substr(0, starts[n - 1]) + "~";
}

std::string percent(double p) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.0f%%", 100 * p);
    return buf;
}

} // namespace

std::string draw_lens_grid(const LensGrid& g, const PictureFile& out) {
    size_t longest = 0;
    for (auto& l : g.row_labels)
        longest = std::max(longest, l.size());
    const int cw = kCellChars * 8 + 6, ch = 34; // a cell: the token over its probability
    const int gx = 8 + 8 * static_cast<int>(longest) + 8, gy = 8 + 24 + 20;
    const int bar_x = gx + static_cast<int>(g.cols) * cw + 16;
    const int width = std::max(bar_x + 90, 8 + Canvas::text_width(g.title) + 8);
    const int height = std::max(gy + static_cast<int>(g.rows) * ch + 24, gy + 180);
    std::unique_ptr<Surface> s = make_surface(out.format, width, height);
    s->text(8, 8, g.title, kInk);
    for (int64_t c = 0; c < g.cols; ++c) // the input tokens over their columns
        s->text(gx + static_cast<int>(c) * cw + 3, gy - 20, label(g.col_labels[c], kCellChars),
                {90, 90, 90}, false, true);
    for (int64_t r = 0; r < g.rows; ++r) {
        const int y = gy + static_cast<int>(r) * ch;
        s->text(gx - 8 - Canvas::text_width(g.row_labels[r]), y + (ch - 16) / 2, g.row_labels[r],
                kInk);
        for (int64_t c = 0; c < g.cols; ++c) {
            const int x = gx + static_cast<int>(c) * cw;
            const double p = g.prob[r * g.cols + c];
            const Rgb bg = viridis(p), ink = ink_on(bg);
            s->fill(x, y, cw, ch, bg);
            s->text(x + 3, y + 1, label(g.top[r * g.cols + c], kCellChars), ink, false, true);
            s->text(x + 3, y + 17, percent(p), ink);
        }
    }
    const int bh = std::max(96, static_cast<int>(g.rows) * ch);
    for (int j = 0; j < bh; ++j)
        s->fill(bar_x, gy + j, 16, 1, viridis(1.0 - double(j) / (bh - 1)));
    s->text(bar_x + 20, gy - 4, "p=1", kInk);
    s->text(bar_x + 20, gy + bh - 12, "0", kInk);
    const nlohmann::json layout = {{"x", gx},      {"y", gy},        {"cell_w", cw},
                                   {"cell_h", ch}, {"rows", g.rows}, {"cols", g.cols}};
    s->write(out.path, {{"Software", "qkv inspect"}, {"qkv-layout", layout.dump()}});
    return "wrote " + out.path + " (" + std::to_string(s->width()) + " x " +
           std::to_string(s->height()) + ")\n";
}

std::string lens_grid_html(const LensGrid& g) {
    std::string body = "<h1>" + html_text(g.title) + "</h1>\n<table>\n<tr><th></th>";
    for (auto& c : g.col_labels)
        body += "<th>" + html_text(c) + "</th>";
    body += "</tr>\n";
    for (int64_t r = 0; r < g.rows; ++r) {
        body += "<tr><th>" + html_text(g.row_labels[r]) + "</th>";
        for (int64_t c = 0; c < g.cols; ++c) {
            const double p = g.prob[r * g.cols + c];
            const Rgb bg = viridis(p);
            char prob[32];
            std::snprintf(prob, sizeof prob, "%.6f", p);
            body += "<td style=\"background:" + hex(bg) + ";color:" + hex(ink_on(bg)) +
                    "\" title=\"" + html_text(g.row_labels[r]) + ", position " + std::to_string(c) +
                    ": p = " + prob + "\">" + html_text(g.top[r * g.cols + c]) + "<br><small>" +
                    percent(p) + "</small></td>";
        }
        body += "</tr>\n";
    }
    body += "</table>\n<p>Colour: the probability of the top token, viridis from 0 (dark) to 1 "
            "(yellow).</p>\n";
    return html_document(g.title,
                         "h1 { font-size: 18px; }\ntable { border-collapse: collapse; font-family: "
                         "monospace; }\ntd, th { padding: 2px 4px; white-space: pre; }\n",
                         body);
}

std::string lens_grid_text(const LensGrid& g, int width, bool color) {
    std::ostringstream o;
    o << g.title << '\n';
    size_t lw = 0;
    for (auto& l : g.row_labels)
        lw = std::max(lw, l.size());
    const int cell = kCellChars + (color ? 1 : 7); // plain: "token[100%] "
    const int64_t shown = std::clamp<int64_t>((width - static_cast<int>(lw) - 1) / cell, 1,
                                              std::max<int64_t>(1, g.cols));
    auto pad = [](std::string s, size_t n) {
        size_t chars = 0;
        for (unsigned char c : s)
            chars += (c & 0xC0) != 0x80;
        return s + std::string(n > chars ? n - chars : 0, ' ');
    };
    o << std::string(lw + 1, ' ');
    for (int64_t c = 0; c < std::min(shown, g.cols); ++c)
        o << pad(label(g.col_labels[c], kCellChars), cell);
    o << '\n';
    for (int64_t r = 0; r < g.rows; ++r) {
        o << std::string(lw - g.row_labels[r].size(), ' ') << g.row_labels[r] << ' ';
        for (int64_t c = 0; c < std::min(shown, g.cols); ++c) {
            const double p = g.prob[r * g.cols + c];
            const std::string t = label(g.top[r * g.cols + c], kCellChars);
            if (!color) {
                o << pad(t + '[' + percent(p) + ']', cell);
                continue;
            }
            const Rgb bg = viridis(p);
            o << "\x1b[48;2;" << int(bg.r) << ';' << int(bg.g) << ';' << int(bg.b) << "m\x1b[38;2;"
              << (ink_on(bg) == Rgb{0, 0, 0} ? "0;0;0" : "255;255;255") << 'm' << pad(t, kCellChars)
              << "\x1b[0m ";
        }
        o << '\n';
    }
    if (shown < g.cols) o << "(" << g.cols - shown << " more positions not shown; use --width)\n";
    return o.str();
}

} // namespace qkv
