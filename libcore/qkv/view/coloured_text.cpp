#include "qkv/view/coloured_text.hpp"

#include "qkv/view/canvas.hpp"
#include "qkv/view/svg.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace qkv {

Rgb ink_on(Rgb c) {
    return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b < 128 ? Rgb{255, 255, 255} : Rgb{0, 0, 0};
}

std::string html_text(const std::string& s) {
    return xml_text(s);
}

std::string html_document(const std::string& title, const std::string& style,
                          const std::string& body) {
    return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
           html_text(title) +
           "</title>\n<style>\nbody { font: 14px/1.4 system-ui, sans-serif; "
           "margin: 16px; color: #141414; }\n" +
           style + "</style>\n</head>\n<body>\n" + body + "</body>\n</html>\n";
}

std::string draw_coloured_text(const ColouredText& t, const PictureFile& out) {
    const int width = 800, line_h = 20, x0 = 8;
    // Lay the tokens out first (a token wider than a line gets a line of its own).
    struct Placed {
        int x, y;
        size_t b, p;
    };
    std::vector<Placed> placed;
    int y = 8 + 24 + 20;
    for (size_t b = 0; b < t.tokens.size(); ++b) {
        int x = x0;
        for (size_t p = 0; p < t.tokens[b].size(); ++p) {
            const int w = Canvas::text_width(t.tokens[b][p]);
            if (x > x0 && x + w > width - 8) {
                x = x0;
                y += line_h;
            }
            placed.push_back({x, y, b, p});
            x += w;
        }
        y += line_h + 12; // a gap between sequences
    }
    std::unique_ptr<Surface> s = make_surface(out.format, width, y + 8);
    s->text(8, 8, t.title, {20, 20, 20});
    s->text(8, 28, t.legend, {90, 90, 90});
    nlohmann::json cells = nlohmann::json::array();
    for (const Placed& q : placed) {
        const std::string& tok = t.tokens[q.b][q.p];
        const Rgb bg = t.colours[q.b][q.p];
        s->fill(q.x, q.y, std::max(Canvas::text_width(tok), 4), line_h - 2, bg);
        s->text(q.x, q.y + 1, tok, ink_on(bg), false, true);
        cells.push_back({q.x, q.y});
    }
    s->write(out.path, {{"Software", "qkv inspect"}, {"qkv-layout", cells.dump()}});
    return "wrote " + out.path + " (" + std::to_string(s->width()) + " x " +
           std::to_string(s->height()) + ")\n";
}

std::string coloured_text_html(const ColouredText& t) {
    std::string body = "<h1>" + html_text(t.title) + "</h1>\n<p>" + html_text(t.legend) + "</p>\n";
    for (size_t b = 0; b < t.tokens.size(); ++b) {
        body += "<p class=\"text\" data-batch=\"" + std::to_string(b) + "\">";
        for (size_t p = 0; p < t.tokens[b].size(); ++p) {
            const Rgb bg = t.colours[b][p];
            body += "<span style=\"background:" + hex(bg) + ";color:" + hex(ink_on(bg)) +
                    "\" title=\"position " + std::to_string(p) + ": " + t.values[b][p] + "\">" +
                    html_text(t.tokens[b][p]) + "</span>";
        }
        body += "</p>\n";
    }
    return html_document(t.title,
                         "h1 { font-size: 18px; }\n.text { font-family: monospace; white-space: "
                         "pre-wrap; line-height: 1.8; }\n",
                         body);
}

} // namespace qkv
