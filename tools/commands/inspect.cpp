#include "commands/inspect.hpp"
#include "qkv/view/loss_curve.hpp"

#include "commands/cli.hpp"
#include "commands/lens.hpp"
#include "qkv/base/errors.hpp"
#include "qkv/files/h5file.hpp"
#include "qkv/view/coloured_text.hpp"
#include "qkv/view/heatmap.hpp"
#include "qkv/view/html_page.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/ioctl.h>
#include <unistd.h>

namespace qkv {

namespace {

using json = nlohmann::ordered_json;

int64_t to_int(const std::string& s, const std::string& what) {
    int64_t v = 0;
    if (!parse_int64(s, v)) throw UsageError(what + ": '" + s + "' is not an integer");
    return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (true) {
        size_t next = s.find(sep, pos);
        out.push_back(s.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
        if (next == std::string::npos) return out;
        pos = next + 1;
    }
}

std::string dtype_name(const DatasetInfo& in) {
    if (in.kind == ValueKind::Float) return "float" + std::to_string(in.type_size * 8);
    if (in.kind == ValueKind::Integer) return "int" + std::to_string(in.type_size * 8);
    if (in.kind == ValueKind::String) return "string";
    return "other";
}

std::string fmt(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

struct Stats {
    double min = std::numeric_limits<double>::infinity(), max = -min, mean = 0, std = 0;
    int64_t nan = 0, inf = 0, finite = 0;
};

Stats stats_of(const float* p, int64_t n) {
    Stats s;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double v = p[i];
        if (std::isnan(v))
            ++s.nan;
        else if (std::isinf(v))
            ++s.inf;
        else {
            ++s.finite;
            sum += v;
            s.min = std::min(s.min, v);
            s.max = std::max(s.max, v);
        }
    }
    if (s.finite) {
        s.mean = sum / s.finite;
        for (int64_t i = 0; i < n; ++i)
            if (std::isfinite(p[i])) sq += (p[i] - s.mean) * (p[i] - s.mean);
        s.std = std::sqrt(sq / s.finite);
    } else {
        s.min = s.max = std::nan("");
    }
    return s;
}

Tensor read_any_as_f32(const H5File& f, const std::string& name) {
    DatasetInfo in = f.info(name);
    if (in.kind == ValueKind::Float) return f.read_f32(name);
    if (in.kind == ValueKind::Integer) {
        Tensor i = f.read_i32(name);
        Tensor t = Tensor::zeros(i.shape());
        for (int64_t k = 0; k < i.numel(); ++k)
            t.f32()[k] = static_cast<float>(i.i32()[k]);
        return t;
    }
    throw FormatError(f.name() + ":" + name + ": not numeric (" + dtype_name(in) + ")");
}

std::string visible_token(const std::string& s, size_t max_chars = 16) {
    std::string o;
    for (unsigned char c : s) {
        if (c == '\n')
            o += "\\n";
        else if (c == '\t')
            o += "\\t";
        else
            o += static_cast<char>(c);
    }
    if (o.size() > max_chars) o = o.substr(0, max_chars - 1) + "~";
    return o;
}

// ---------------------------------------------------------------- summary

std::string summary(const H5File& f, bool as_json) {
    const std::string format = f.has_attr("/", "format") ? f.attr_str("/", "format") : "";
    json j;
    j["file"] = f.name();
    j["kind"] = format == "qkv-activations" ? "activations"
                : format == "qkv-model"     ? "model"
                                            : "other";
    if (f.has_attr("/", "model_id")) j["model_id"] = f.attr_str("/", "model_id");
    if (f.has_attr("/", "stage")) j["stage"] = f.attr_str("/", "stage");
    if (f.has_attr("/", "layer")) j["layer"] = f.attr_int("/", "layer");
    if (f.has_attr("/", "modified")) j["modified"] = f.attr_str("/", "modified");
    std::vector<std::string> token_text;
    if (f.exists("/token_text")) token_text = f.read_strings("/token_text");
    if (!token_text.empty() && f.exists("/tokens")) {
        const Shape ts = f.info("/tokens").shape;
        json rows = json::array();
        for (int64_t b = 0; b < ts[0]; ++b)
            rows.push_back(std::vector<std::string>(token_text.begin() + b * ts[1],
                                                    token_text.begin() + (b + 1) * ts[1]));
        j["tokens"] = rows;
    }
    json ds = json::object();
    for (const auto& name : f.datasets("/")) {
        if (name.rfind("/tokenizer/", 0) == 0) continue;
        DatasetInfo in = f.info(name);
        json d;
        d["shape"] = in.shape;
        d["dtype"] = dtype_name(in);
        if (in.kind == ValueKind::Float || in.kind == ValueKind::Integer) {
            Tensor t = read_any_as_f32(f, name);
            Stats s = stats_of(t.f32(), t.numel());
            d["min"] = s.min;
            d["max"] = s.max;
            d["mean"] = s.mean;
            d["std"] = s.std;
            d["nan"] = s.nan;
            d["inf"] = s.inf;
            if (name == "/resid" && in.shape.size() == 3) {
                json norms = json::array();
                const int64_t D = in.shape[2];
                for (int64_t b = 0; b < in.shape[0]; ++b) {
                    std::vector<double> row;
                    for (int64_t p = 0; p < in.shape[1]; ++p) {
                        double sq = 0;
                        const float* v = t.f32() + (b * in.shape[1] + p) * D;
                        for (int64_t i = 0; i < D; ++i)
                            sq += double(v[i]) * v[i];
                        row.push_back(std::sqrt(sq));
                    }
                    norms.push_back(row);
                }
                d["l2_per_position"] = norms;
            }
        }
        ds[name] = d;
    }
    j["datasets"] = ds;
    if (f.has_attr("/", "history")) j["history"] = split(f.attr_str("/", "history"), '\n');
    if (as_json) return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";

    std::ostringstream o;
    o << "file:     " << f.name() << "\nkind:     " << j["kind"].get<std::string>();
    if (j.contains("model_id")) o << "\nmodel_id: " << j["model_id"].get<std::string>();
    if (j.contains("stage"))
        o << "\nstage:    " << j["stage"].get<std::string>() << ", layer "
          << j["layer"].get<int64_t>();
    if (j.contains("modified")) o << "\nmodified: " << j["modified"].get<std::string>();
    if (j.contains("tokens"))
        for (size_t b = 0; b < j["tokens"].size(); ++b) {
            o << "\ntokens[" << b << "]: ";
            for (auto& t : j["tokens"][b])
                o << '[' << visible_token(t.get<std::string>(), 40) << ']';
        }
    o << "\ndatasets:\n";
    for (auto& [name, d] : ds.items()) {
        std::string shape = shape_str(d["shape"].get<Shape>());
        o << "  " << std::left << std::setw(18) << name << ' ' << std::setw(18) << shape << ' '
          << std::setw(8) << d["dtype"].get<std::string>();
        if (d.contains("min"))
            o << " min " << fmt(d["min"]) << "  max " << fmt(d["max"]) << "  mean "
              << fmt(d["mean"]) << "  std " << fmt(d["std"])
              << (d["nan"].get<int64_t>() ? "  NaN " + std::to_string(d["nan"].get<int64_t>()) : "")
              << (d["inf"].get<int64_t>() ? "  Inf " + std::to_string(d["inf"].get<int64_t>())
                                          : "");
        o << '\n';
        if (d.contains("l2_per_position"))
            for (size_t b = 0; b < d["l2_per_position"].size(); ++b) {
                o << "    L2 norm per position [" << b << "]:";
                for (auto& v : d["l2_per_position"][b])
                    o << ' ' << fmt(v.get<double>());
                o << '\n';
            }
    }
    if (j.contains("history")) {
        o << "history:\n";
        for (auto& h : j["history"])
            o << "  " << h.get<std::string>() << '\n';
    }
    return o.str();
}

// ---------------------------------------------------------------- slices

struct Sliced {
    std::vector<int64_t> shape; // of the result (ranges only)
    std::vector<float> values;
    std::vector<std::vector<int64_t>> idx; // source index of each value
};

Sliced take(const Tensor& t, const std::vector<SliceAxis>& axes) {
    Sliced r;
    const Shape& s = t.shape();
    for (auto& a : axes)
        if (a.range) r.shape.push_back(a.stop - a.start);
    std::vector<int64_t> cur(axes.size());
    for (size_t i = 0; i < axes.size(); ++i)
        cur[i] = axes[i].start;
    const int64_t total = shape_numel(r.shape);
    for (int64_t n = 0; n < total; ++n) {
        int64_t off = 0;
        for (size_t i = 0; i < axes.size(); ++i)
            off = off * s[i] + cur[i];
        r.values.push_back(t.f32()[off]);
        r.idx.push_back(cur);
        for (int i = static_cast<int>(axes.size()) - 1; i >= 0; --i) { // odometer over ranges
            if (!axes[i].range) continue;
            if (++cur[i] < axes[i].stop) break;
            cur[i] = axes[i].start;
        }
    }
    return r;
}

std::string print_slice(const std::string& where, const Sliced& s) {
    std::ostringstream o;
    o << "# " << where << " -> " << shape_str(s.shape) << '\n';
    if (s.shape.size() == 2) {
        for (int64_t r = 0; r < s.shape[0]; ++r) {
            o << r << ':';
            for (int64_t c = 0; c < s.shape[1]; ++c)
                o << '\t' << fmt(s.values[r * s.shape[1] + c]);
            o << '\n';
        }
        return o.str();
    }
    for (size_t i = 0; i < s.values.size(); ++i) {
        std::string idx;
        for (size_t k = 0; k < s.idx[i].size(); ++k)
            idx += (k ? "," : "") + std::to_string(s.idx[i][k]);
        o << '[' << idx << "]\t" << fmt(s.values[i]) << '\n';
    }
    return o.str();
}

// ---------------------------------------------------------------- pictures

// The picture file --png or --svg names.
PictureFile picture_file(const InspectOptions& opt) {
    if (!opt.svg.empty()) return {PictureFile::Format::Svg, opt.svg};
    return {PictureFile::Format::Png, opt.png};
}

std::string render_term(const std::vector<Heatmap>& panels, int width, bool color, bool signed_map,
                        double scale) {
    std::ostringstream o;
    const char* ramp = ".:-=+*#%@";
    for (const auto& h : panels) {
        o << h.title;
        if (!h.row_axis.empty() && !h.col_axis.empty())
            o << "  (" << h.row_axis << " down, " << h.col_axis << " across)";
        o << '\n';
        const int label_w = 12;
        const int avail = std::max(1, width - label_w - 1);
        const int cw = h.cols * 2 <= avail ? 2 : 1; // characters per cell
        const int64_t shown = std::min<int64_t>(h.cols, avail / cw);
        for (int64_t r = 0; r < h.rows; ++r) {
            std::string l = visible_token(h.row_labels[r], label_w);
            o << std::string(label_w - l.size(), ' ') << l << ' ';
            for (int64_t k = 0; k < shown; ++k) {
                const bool m = h.masked[r * h.cols + k];
                const double v = h.values[r * h.cols + k] / scale;
                if (color) {
                    Rgb c = m ? Rgb{60, 60, 60} : signed_map ? diverging(v) : viridis(v);
                    o << "\x1b[48;2;" << int(c.r) << ';' << int(c.g) << ';' << int(c.b) << 'm'
                      << std::string(cw, ' ') << "\x1b[0m";
                } else {
                    const double t = signed_map ? std::abs(v) : v;
                    const char ch = m ? ' ' : ramp[std::clamp(static_cast<int>(t * 8.999), 0, 8)];
                    o << std::string(cw, ch);
                }
            }
            o << '\n';
        }
        if (shown < h.cols) o << "(" << h.cols - shown << " more keys not shown; use --width)\n";
    }
    return o.str();
}

std::vector<std::string> labels_or_index(const std::vector<std::string>& text, int64_t b,
                                         int64_t n_pos, int64_t n, const std::string& prefix) {
    std::vector<std::string> out;
    for (int64_t i = 0; i < n; ++i)
        out.push_back(!text.empty() && n == n_pos ? visible_token(text[b * n_pos + i])
                                                  : prefix + std::to_string(i));
    return out;
}

std::string pattern_pictures(const H5File& f, const InspectOptions& opt) {
    if (!f.exists("/attn/pattern"))
        throw FormatError(f.name() + ":/attn/pattern: not found (run attend with --save pattern)");
    Tensor p = f.read_f32("/attn/pattern", 4); // [batch, head, query_pos, key_pos]
    const int64_t B = p.dim(0), H = p.dim(1), T = p.dim(2), Tk = p.dim(3);
    if (opt.batch < 0 || opt.batch >= B)
        throw UsageError("--batch " + std::to_string(opt.batch) + ": the file has batch " +
                         std::to_string(B));
    Tensor scores;
    if (f.exists("/attn/scores")) scores = f.read_f32("/attn/scores", 4);
    std::vector<std::string> text;
    int64_t n_pos = 0;
    if (f.exists("/token_text") && f.exists("/tokens")) {
        text = f.read_strings("/token_text");
        n_pos = f.info("/tokens").shape[1];
    }
    // A padded batch: cells of a pad query or a pad key are hatched as masked ones are.
    Tensor pad_mask; // [batch, pos]
    if (f.exists("/mask")) {
        pad_mask = f.read_i32("/mask", 2);
        if (pad_mask.dim(0) != B || pad_mask.dim(1) != T || Tk != T) pad_mask = Tensor();
    }
    const bool no_mask = f.has_attr("/", "modified") &&
                         f.attr_str("/", "modified").find("no causal mask") != std::string::npos;
    const int64_t layer = f.has_attr("/attn", "layer") ? f.attr_int("/attn", "layer") : -1;
    std::vector<Heatmap> panels;
    for (int64_t h : parse_head_list(opt.heads, H, "--heads")) {
        Heatmap m;
        m.title = "layer " + std::to_string(layer) + ", head " + std::to_string(h) +
                  ": attention pattern";
        m.rows = T;
        m.cols = Tk;
        m.row_axis = "query";
        m.col_axis = "key";
        m.row_labels = labels_or_index(text, opt.batch, n_pos, T, "q");
        m.col_labels = labels_or_index(text, opt.batch, n_pos, Tk, "k");
        const float* v = p.f32() + (opt.batch * H + h) * T * Tk;
        for (int64_t i = 0; i < T * Tk; ++i) {
            m.values.push_back(v[i]);
            bool masked;
            if (!scores.empty())
                masked = std::isinf(scores.f32()[(opt.batch * H + h) * T * Tk + i]);
            else
                masked = !no_mask && Tk == T && (i % Tk) > (i / Tk) && v[i] == 0.0f;
            if (!pad_mask.empty()) {
                const int32_t* real = pad_mask.i32() + opt.batch * T;
                masked = masked || !real[i / Tk] || !real[i % Tk];
            }
            m.masked.push_back(masked);
        }
        panels.push_back(std::move(m));
    }
    if (!opt.html.empty()) {
        PatternPage page;
        page.title = "layer " + std::to_string(layer) + ": attention patterns, " + f.name();
        page.heads = parse_head_list(opt.heads, H, "--heads");
        page.rows = T;
        page.cols = Tk;
        if (!text.empty() && n_pos == T)
            page.tokens.assign(text.begin() + opt.batch * T, text.begin() + (opt.batch + 1) * T);
        for (auto& m : panels) {
            page.values.insert(page.values.end(), m.values.begin(), m.values.end());
            page.masked.insert(page.masked.end(), m.masked.begin(), m.masked.end());
        }
        return write_html(opt.html, pattern_page(page));
    }
    if (!opt.term) return draw_heatmaps(panels, picture_file(opt), {false, 1.0, "1"});
    return render_term(panels, opt.width, opt.color, false, 1.0);
}

// The text of each sequence with every token's background coloured by its value in the dataset
// (sliced to [batch, pos] or [pos]): the diverging map around 0 when values have both signs,
// else viridis from the lowest to the highest; plain, each token followed by its value.
std::string coloured_text(const H5File& f, const std::string& name, const InspectOptions& opt) {
    Tensor t = read_any_as_f32(f, name);
    Sliced s = take(t, parse_slice(opt.slice, t.shape()));
    if (s.shape.size() == 1) s.shape.insert(s.shape.begin(), 1);
    if (!f.exists("/token_text") || !f.exists("/tokens"))
        throw FormatError(f.name() + ": no /token_text to colour");
    const Shape tokens = f.info("/tokens").shape; // [batch, pos]
    if (s.shape.size() != 2 || s.shape[1] != tokens[1] || s.shape[0] > tokens[0])
        throw UsageError("--text: " + name + (opt.slice.empty() ? "" : "[" + opt.slice + "]") +
                         " is " + shape_str(s.shape) + ", not [batch, pos] of the text's " +
                         shape_str(tokens) + " (slice it, e.g. --slice :,:,42)");
    const std::vector<std::string> text = f.read_strings("/token_text");
    double lo = INFINITY, hi = -INFINITY;
    for (float v : s.values)
        if (std::isfinite(v)) {
            lo = std::min(lo, double(v));
            hi = std::max(hi, double(v));
        }
    if (lo > hi) lo = hi = 0; // no finite value
    const bool signed_map = lo < 0 && hi > 0;
    const double scale = std::max({std::abs(lo), std::abs(hi), 1e-30});
    const double span = std::max(hi - lo, 1e-30);
    ColouredText ct;
    ct.title = f.name() + ":" + name + (opt.slice.empty() ? "" : "[" + opt.slice + "]");
    ct.legend = signed_map ? "blue -" + fmt(scale) + ", white 0, red +" + fmt(scale)
                           : "dark " + fmt(lo) + " to bright " + fmt(hi);
    const int64_t B = s.shape[0], T = s.shape[1];
    for (int64_t b = 0; b < B; ++b) {
        ct.tokens.emplace_back();
        ct.colours.emplace_back();
        ct.values.emplace_back();
        for (int64_t p = 0; p < T; ++p) {
            const float v = s.values[b * T + p];
            ct.tokens[b].push_back(visible_token(text[b * tokens[1] + p], 64));
            ct.colours[b].push_back(!std::isfinite(v) ? Rgb{60, 60, 60}
                                    : signed_map      ? diverging(v / scale)
                                                      : viridis((v - lo) / span));
            ct.values[b].push_back(fmt(v));
        }
    }
    if (!opt.html.empty()) return write_html(opt.html, coloured_text_html(ct));
    if (!opt.png.empty() || !opt.svg.empty()) return draw_coloured_text(ct, picture_file(opt));
    std::ostringstream o;
    o << ct.title << "  (" << ct.legend << ")\n";
    for (int64_t b = 0; b < B; ++b) {
        for (int64_t p = 0; p < T; ++p) {
            if (!opt.color) {
                o << ct.tokens[b][p] << '[' << ct.values[b][p] << ']';
                continue;
            }
            const Rgb c = ct.colours[b][p], ink = ink_on(c);
            o << "\x1b[48;2;" << int(c.r) << ';' << int(c.g) << ';' << int(c.b) << "m\x1b[38;2;"
              << int(ink.r) << ';' << int(ink.g) << ';' << int(ink.b) << 'm' << ct.tokens[b][p]
              << "\x1b[0m";
        }
        o << '\n';
    }
    return o.str();
}

std::string slice_picture(const H5File& f, const std::string& name, const InspectOptions& opt) {
    Tensor t = read_any_as_f32(f, name);
    std::vector<SliceAxis> axes = parse_slice(opt.slice, t.shape());
    Sliced s = take(t, axes);
    if (s.shape.size() != 2)
        throw UsageError("--png, --svg and --term draw a 2-D slice; " + name + " sliced by '" +
                         opt.slice + "' is " + shape_str(s.shape) + " (e.g. --slice 0,:,:)");
    Heatmap m;
    m.title = f.name() + ":" + name + (opt.slice.empty() ? "" : "[" + opt.slice + "]");
    m.rows = s.shape[0];
    m.cols = s.shape[1];
    m.values = s.values;
    m.masked.assign(s.values.size(), false);
    // rows over positions get the tokens' text
    std::vector<std::string> text;
    int64_t n_pos = 0;
    if (f.exists("/token_text") && f.exists("/tokens")) {
        text = f.read_strings("/token_text");
        n_pos = f.info("/tokens").shape[1];
    }
    const int64_t b = !axes.empty() && !axes[0].range ? axes[0].start : 0;
    const bool rows_are_pos = axes.size() >= 2 && !axes[0].range && axes[1].range &&
                              axes[1].start == 0 && t.dim(1) == n_pos;
    m.row_labels = rows_are_pos ? labels_or_index(text, b, n_pos, m.rows, "")
                                : labels_or_index({}, 0, 0, m.rows, "");
    m.row_axis = rows_are_pos ? "position" : "row";
    for (int64_t k = 0; k < m.cols; ++k)
        m.col_labels.push_back(k % 8 == 0 ? std::to_string(k) : "");
    m.col_axis = "column";
    // The axes' names from the dataset's dimension labels, where it has them.
    const std::vector<std::string> labels = f.dimension_labels(name);
    std::vector<std::string> kept; // the labels of the dimensions the slice keeps
    for (size_t i = 0; i < labels.size(); ++i)
        if (axes.empty() || i >= axes.size() || axes[i].range) kept.push_back(labels[i]);
    if (kept.size() == 2) {
        if (!kept[0].empty()) m.row_axis = kept[0];
        if (!kept[1].empty()) m.col_axis = kept[1];
    }
    double scale = 0;
    for (float v : m.values)
        if (std::isfinite(v)) scale = std::max(scale, double(std::abs(v)));
    if (scale == 0) scale = 1;
    if (!opt.term) return draw_heatmaps({m}, picture_file(opt), {true, scale, fmt(scale)});
    return render_term({m}, opt.width, opt.color, true, scale);
}

// ---------------------------------------------------------------- diff

std::string diff_files(const H5File& a, const H5File& b, bool as_json, double tolerance,
                       bool* differ) {
    json j;
    bool any = false;
    j["a"] = a.name();
    j["b"] = b.name();
    json ds = json::object();
    std::vector<std::string> only_a, only_b;
    auto names_b = b.datasets("/");
    for (const auto& name : a.datasets("/")) {
        if (std::find(names_b.begin(), names_b.end(), name) == names_b.end()) {
            only_a.push_back(name);
            continue;
        }
        DatasetInfo ia = a.info(name), ib = b.info(name);
        json d;
        if (ia.shape != ib.shape) {
            d["shape_a"] = ia.shape;
            d["shape_b"] = ib.shape;
            ds[name] = d;
            any = true;
            continue;
        }
        if (ia.kind == ValueKind::String || ib.kind == ValueKind::String) {
            d["equal"] = a.read_strings(name) == b.read_strings(name);
            any = any || !d["equal"].get<bool>();
            ds[name] = d;
            continue;
        }
        Tensor x = read_any_as_f32(a, name), y = read_any_as_f32(b, name);
        double max_abs = 0, scale = 0;
        int64_t differing = 0;
        for (int64_t i = 0; i < x.numel(); ++i) {
            const double u = x.f32()[i], v = y.f32()[i];
            if ((std::isinf(u) && u == v) || (std::isnan(u) && std::isnan(v))) continue;
            const double dd = std::isnan(u) || std::isnan(v)
                                  ? std::numeric_limits<double>::infinity()
                                  : std::abs(u - v);
            if (dd > 0) ++differing;
            max_abs = std::max(max_abs, dd);
            if (std::isfinite(u)) scale = std::max(scale, std::abs(u));
        }
        d["max_abs"] = max_abs;
        d["max_rel"] = scale > 0 ? max_abs / scale : (max_abs > 0 ? 1.0 : 0.0);
        d["values_differing"] = differing;
        any = any || max_abs > tolerance;
        if (name == "/resid" && ia.shape.size() == 3) {
            const int64_t T = ia.shape[1], D = ia.shape[2];
            json norms = json::array();
            std::vector<std::pair<double, std::pair<int64_t, int64_t>>> order;
            for (int64_t bb = 0; bb < ia.shape[0]; ++bb) {
                std::vector<double> row;
                for (int64_t p = 0; p < T; ++p) {
                    double sq = 0;
                    for (int64_t i = 0; i < D; ++i) {
                        const double dd =
                            double(x.f32()[(bb * T + p) * D + i]) - y.f32()[(bb * T + p) * D + i];
                        sq += dd * dd;
                    }
                    row.push_back(std::sqrt(sq));
                    order.push_back({std::sqrt(sq), {bb, p}});
                }
                norms.push_back(row);
            }
            std::sort(order.begin(), order.end(),
                      [](auto& l, auto& r) { return l.first > r.first; });
            json top = json::array();
            for (size_t i = 0; i < std::min<size_t>(5, order.size()); ++i)
                if (order[i].first > 0)
                    top.push_back({{"batch", order[i].second.first},
                                   {"position", order[i].second.second},
                                   {"l2", order[i].first}});
            d["l2_per_position"] = norms;
            d["most_changed"] = top;
        }
        ds[name] = d;
    }
    for (const auto& name : names_b)
        if (!a.exists(name)) only_b.push_back(name);
    j["datasets"] = ds;
    j["only_in_a"] = only_a;
    j["only_in_b"] = only_b;
    any = any || !only_a.empty() || !only_b.empty();
    j["differ"] = any;
    j["tolerance"] = tolerance;
    if (differ) *differ = any;
    if (as_json) return j.dump(2) + "\n";
    std::ostringstream o;
    o << "a: " << a.name() << "\nb: " << b.name() << '\n';
    for (auto& [name, d] : ds.items()) {
        o << "  " << std::left << std::setw(18) << name << ' ';
        if (d.contains("shape_a"))
            o << "shapes differ: " << shape_str(d["shape_a"].get<Shape>()) << " vs "
              << shape_str(d["shape_b"].get<Shape>());
        else if (d.contains("equal"))
            o << (d["equal"].get<bool>() ? "equal" : "differ");
        else {
            o << "max abs " << fmt(d["max_abs"]) << "  max rel " << fmt(d["max_rel"]) << "  ("
              << d["values_differing"].get<int64_t>() << " values differ)";
            if (d.contains("most_changed") && !d["most_changed"].empty()) {
                o << "\n    most changed positions:";
                for (auto& m : d["most_changed"])
                    o << " [" << m["batch"].get<int64_t>() << "," << m["position"].get<int64_t>()
                      << "] " << fmt(m["l2"].get<double>());
            }
        }
        o << '\n';
    }
    for (auto& n : only_a)
        o << "  only in a: " << n << '\n';
    for (auto& n : only_b)
        o << "  only in b: " << n << '\n';
    o << (any ? "the files differ" : "the files agree")
      << (tolerance > 0 ? " (tolerance " + fmt(tolerance) + ")" : std::string()) << '\n';
    return o.str();
}

} // namespace

std::vector<SliceAxis> parse_slice(const std::string& text, const std::vector<int64_t>& shape) {
    std::vector<SliceAxis> axes;
    std::vector<std::string> parts = text.empty() ? std::vector<std::string>() : split(text, ',');
    if (parts.size() > shape.size())
        throw UsageError("--slice '" + text + "' has " + std::to_string(parts.size()) +
                         " indices for a dataset of rank " + std::to_string(shape.size()));
    for (size_t i = 0; i < shape.size(); ++i) {
        const int64_t n = shape[i];
        SliceAxis a;
        const std::string p = i < parts.size() ? parts[i] : ":";
        const auto colon = p.find(':');
        if (colon == std::string::npos) {
            int64_t v = to_int(p, "--slice");
            if (v < 0) v += n;
            if (v < 0 || v >= n)
                throw UsageError("--slice: index " + p + " out of range for axis " +
                                 std::to_string(i) + " of length " + std::to_string(n));
            a.start = v;
            a.stop = v + 1;
        } else {
            a.range = true;
            const std::string s0 = p.substr(0, colon), s1 = p.substr(colon + 1);
            int64_t b = s0.empty() ? 0 : to_int(s0, "--slice"),
                    e = s1.empty() ? n : to_int(s1, "--slice");
            if (b < 0) b += n;
            if (e < 0) e += n;
            a.start = std::clamp<int64_t>(b, 0, n);
            a.stop = std::clamp<int64_t>(e, a.start, n);
        }
        axes.push_back(a);
    }
    return axes;
}

std::vector<int64_t> parse_head_list(const std::string& text, int64_t n_heads,
                                     const std::string& option) {
    std::vector<int64_t> out;
    if (text == "all") {
        for (int64_t h = 0; h < n_heads; ++h)
            out.push_back(h);
        return out;
    }
    for (const auto& p : split(text, ',')) {
        const int64_t h = to_int(p, option);
        if (h < 0 || h >= n_heads)
            throw UsageError(option + ": head " + p + " is out of range (0.." +
                             std::to_string(n_heads - 1) + ")");
        if (std::find(out.begin(), out.end(), h) == out.end()) out.push_back(h);
    }
    return out;
}

std::string run_inspect(const InspectOptions& opt, bool* differ) {
    if (!opt.more.empty() && !opt.lens)
        throw UsageError("one FILE (several only with --lens: the stage files of one run)");
    if (!opt.model.empty() && !opt.lens) throw UsageError("-m is for --lens");
    std::string path = opt.target, dataset;
    if (auto c = path.find(":/"); c != std::string::npos) {
        dataset = path.substr(c + 1);
        path = path.substr(0, c);
    }
    InspectOptions o = opt;
    if (o.width <= 0) { // the terminal's width, else $COLUMNS, else 80
        winsize ws{};
        const char* cols = std::getenv("COLUMNS");
        o.width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col
                  : cols && std::atoi(cols) > 0                               ? std::atoi(cols)
                                                                              : 80;
    }
    if (int(!o.png.empty()) + int(!o.svg.empty()) + int(!o.html.empty()) + int(o.term) > 1)
        throw UsageError("--png, --svg, --html and --term: one picture at a time");
    if (!o.html.empty() && !o.pattern && !o.text && !o.lens)
        throw UsageError("--html draws attention patterns (--pattern), a coloured text (--text) "
                         "or the logit lens (--lens)");
    if (o.lens) {
        if (!dataset.empty()) throw UsageError("--lens reads whole files, not FILE:/DATASET");
        return run_lens(o);
    }
    H5File f = H5File::open_read(path);
    if (!opt.diff.empty())
        return diff_files(f, H5File::open_read(opt.diff), opt.json, opt.tolerance, differ);
    const bool picture = !o.png.empty() || !o.svg.empty() || !o.html.empty() || o.term;
    if (o.loss) {
        if (o.term) throw UsageError("--loss draws with --png or --svg (or prints a table)");
        return picture ? loss_picture(f, picture_file(o)) : loss_table(f);
    }
    if (o.pattern) {
        if (!picture)
            throw UsageError(
                "--pattern draws a picture: add --png FILE, --svg FILE, --html FILE or --term");
        return pattern_pictures(f, o);
    }
    if (o.text && dataset.empty())
        throw UsageError("--text colours the text by a dataset: give FILE:/DATASET");
    if (!dataset.empty()) {
        if (!f.exists(dataset)) throw FormatError(f.name() + ":" + dataset + ": dataset not found");
        if (o.text) return coloured_text(f, dataset, o);
        if (picture) return slice_picture(f, dataset, o);
        Tensor t = read_any_as_f32(f, dataset);
        return print_slice(f.name() + ":" + dataset + (o.slice.empty() ? "" : "[" + o.slice + "]"),
                           take(t, parse_slice(o.slice, t.shape())));
    }
    if (picture) throw UsageError("--png, --svg and --term need --pattern or FILE:/DATASET");
    return summary(f, o.json);
}

} // namespace qkv
