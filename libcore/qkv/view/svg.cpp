#include "qkv/view/svg.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/h5file.hpp"

#include <cstdio>

namespace qkv {

namespace {

std::string escape(const char* prefix, uint32_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "\\%s{%X}", prefix, static_cast<unsigned>(v));
    return buf;
}

std::string attrs(Rgb c) {
    return "fill=\"" + hex(c) + "\"";
}

} // namespace

std::string xml_text(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size();) {
        char32_t cp = 0;
        const size_t n = utf8_next(s, i, cp);
        if (!n) {
            out += escape("x", static_cast<unsigned char>(s[i++]));
            continue;
        }
        const bool xml_char = cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
                              (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
        if (!xml_char || cp < 0x20)
            out += escape("u", cp);
        else if (cp == '&')
            out += "&amp;";
        else if (cp == '<')
            out += "&lt;";
        else if (cp == '>')
            out += "&gt;";
        else if (cp == '"')
            out += "&quot;";
        else
            out.append(s, i, n);
        i += n;
    }
    return out;
}

SvgDocument::SvgDocument(int width, int height) : w_(width), h_(height) {
    if (width <= 0 || height <= 0)
        throw UsageError("picture of " + std::to_string(width) + " x " + std::to_string(height) +
                         " is out of range");
}

std::string SvgDocument::element(const Run& run) {
    const std::string box = "x=\"" + std::to_string(run.x) + "\" y=\"" + std::to_string(run.y) +
                            "\" width=\"" + std::to_string(run.w) + "\" height=\"" +
                            std::to_string(run.h) + "\"";
    if (run.kind == Run::Rect) return "<rect " + box + " " + attrs(run.c) + "/>\n";
    if (run.kind == Run::Hatch) return "<rect " + box + " fill=\"url(#masked)\"/>\n";
    if (run.kind == Run::Poly)
        return "<polyline points=\"" + run.points + "\" fill=\"none\" stroke=\"" + hex(run.c) +
               "\" stroke-width=\"" + std::to_string(run.thick) + "\"/>\n";
    return "";
}

void SvgDocument::flush() {
    body_ += element(run_);
    run_ = Run();
}

void SvgDocument::fill(int x, int y, int w, int h, Rgb c) {
    if (run_.kind == Run::Rect && run_.y == y && run_.h == h && run_.c == c &&
        run_.x + run_.w == x) {
        run_.w += w; // the next cell of a run of one colour
        return;
    }
    flush();
    run_ = {Run::Rect, x, y, w, h, 1, c, {}, 0, 0};
}

void SvgDocument::hatch(int x, int y, int w, int h) {
    if (run_.kind == Run::Hatch && run_.y == y && run_.h == h && run_.x + run_.w == x) {
        run_.w += w;
        return;
    }
    flush();
    run_ = {Run::Hatch, x, y, w, h, 1, {}, {}, 0, 0};
}

void SvgDocument::line(int x0, int y0, int x1, int y1, Rgb c, int thick) {
    const std::string to = std::to_string(x1) + "," + std::to_string(y1);
    if (run_.kind == Run::Poly && run_.c == c && run_.thick == thick && run_.last_x == x0 &&
        run_.last_y == y0) {
        run_.points += " " + to;
    } else {
        flush();
        run_ = {Run::Poly, 0,     0, 0,
                0,         thick, c, std::to_string(x0) + "," + std::to_string(y0) + " " + to,
                0,         0};
    }
    run_.last_x = x1;
    run_.last_y = y1;
}

void SvgDocument::text(int x, int y, const std::string& s, Rgb c, bool vertical,
                       bool visible_spaces) {
    if (s.empty()) return;
    flush();
    std::string t = xml_text(s);
    if (visible_spaces) // a middle dot, as the PNG's small dot
        for (size_t p = 0; (p = t.find(' ', p)) != std::string::npos;)
            t.replace(p, 1, "\xC2\xB7");
    // The baseline 12 px below the top of the 16 px glyph box.
    const std::string at =
        vertical ? "transform=\"translate(" + std::to_string(x + 12) + " " + std::to_string(y) +
                       ") rotate(-90)\""
                 : "x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y + 12) + "\"";
    body_ += "<text " + at + (c == Rgb{20, 20, 20} ? "" : " " + attrs(c)) + ">" + t + "</text>\n";
}

std::string SvgDocument::document(const PictureMeta& meta) const {
    std::string d = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
                    std::to_string(w_) + "\" height=\"" + std::to_string(h_) + "\" viewBox=\"0 0 " +
                    std::to_string(w_) + " " + std::to_string(h_) + "\">\n";
    if (!meta.empty()) {
        d += "<metadata>\n";
        for (auto& [k, v] : meta)
            d += "<qkv:entry xmlns:qkv=\"https://qkv.dev/svg\" key=\"" + xml_text(k) + "\">" +
                 xml_text(v) + "</qkv:entry>\n";
        d += "</metadata>\n";
    }
    // The hatching of masked cells: the PNG's light grey with a darker diagonal every 6 px.
    d += "<defs><pattern id=\"masked\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
         "<rect width=\"6\" height=\"6\" fill=\"" +
         hex(kMaskedFill) + "\"/><path d=\"M-1,1 L1,-1 M0,6 L6,0 M5,7 L7,5\" stroke=\"" +
         hex(kMaskedLine) +
         "\" stroke-width=\"1\"/></pattern></defs>\n"
         "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
         "<g font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"13.3\" "
         "fill=\"#141414\" xml:space=\"preserve\" shape-rendering=\"crispEdges\">\n" +
         body_ + element(run_) + "</g>\n</svg>\n";
    return d;
}

void SvgDocument::write(const std::string& path, const PictureMeta& meta) const {
    if (is_stdio(path)) throw UsageError("--svg needs a file name");
    const std::string d = document(meta);
    write_atomic(path, d.data(), d.size());
}

} // namespace qkv
