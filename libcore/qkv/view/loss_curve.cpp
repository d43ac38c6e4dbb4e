#include "qkv/view/loss_curve.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/checkpoint.hpp"
#include "qkv/view/canvas.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace qkv {

namespace {

// The log as inspect draws it, in doubles.
struct TrainLog {
    std::vector<double> step, lr, train, val;
};

TrainLog read_log(const H5File& f) {
    const LossLog log = read_loss_log(f);
    if (log.step.empty()) throw FormatError(f.name() + ":/train/log: empty");
    TrainLog g;
    g.step.assign(log.step.begin(), log.step.end());
    g.lr.assign(log.lr.begin(), log.lr.end());
    g.train.assign(log.train_loss.begin(), log.train_loss.end());
    g.val.assign(log.val_loss.begin(), log.val_loss.end());
    return g;
}

std::string num(double v, int prec = 4) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    return buf;
}

// A round tick spacing giving about `want` ticks over span.
double tick_step(double span, int want) {
    const double raw = span / want, mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * mag >= raw) return m * mag;
    return 10 * mag;
}

} // namespace

std::string loss_table(const H5File& f) {
    TrainLog g = read_log(f);
    std::ostringstream o;
    o << "step\tlr\ttrain_loss\tval_loss\n";
    for (size_t i = 0; i < g.step.size(); ++i)
        if (std::isfinite(g.val[i]) || i + 1 == g.step.size())
            o << static_cast<int64_t>(g.step[i]) + 1 << '\t' << num(g.lr[i], 3) << '\t'
              << num(g.train[i]) << '\t' << (std::isfinite(g.val[i]) ? num(g.val[i]) : "-") << '\n';
    for (const char* k : {"val_nats_per_token", "val_nats_per_char", "tokens_per_s", "seconds"})
        if (f.has_attr("/train", k))
            o << "# " << k << " " << num(f.attr_double("/train", k), 5) << '\n';
    return o.str();
}

std::string loss_picture(const H5File& f, const PictureFile& out) {
    TrainLog g = read_log(f);
    const int W = 800, H = 480, left = 64, right = 24, top = 40, bottom = 48;
    const int pw = W - left - right, ph = H - top - bottom;
    double lo = 1e300, hi = -1e300;
    for (auto* v : {&g.train, &g.val})
        for (double x : *v)
            if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
    if (!(hi > lo)) hi = lo + 1;
    const double ys = tick_step(hi - lo, 6);
    lo = std::floor(lo / ys) * ys;
    hi = std::ceil(hi / ys) * ys;
    const double x_lo = 0, x_hi = std::max(1.0, g.step.back() + 1);
    auto px = [&](double step) {
        return left + static_cast<int>(std::lround((step - x_lo) / (x_hi - x_lo) * (pw - 1)));
    };
    auto py = [&](double v) {
        return top + static_cast<int>(std::lround((hi - v) / (hi - lo) * (ph - 1)));
    };

    std::unique_ptr<Surface> surface = make_surface(out.format, W, H);
    Surface& c = *surface;
    const Rgb ink{20, 20, 20}, grid{228, 228, 228}, train_c{120, 160, 220}, val_c{215, 95, 20};
    // grid and axes with ticks
    for (double v = lo; v <= hi + ys / 2; v += ys) {
        c.fill(left, py(v), pw, 1, grid);
        const std::string t = num(v);
        c.text(left - 6 - Canvas::text_width(t), py(v) - 8, t, ink);
    }
    const double xs = tick_step(x_hi - x_lo, 8);
    for (double s = 0; s <= x_hi + xs / 2; s += xs) {
        if (s > x_hi) break;
        c.fill(px(s), top, 1, ph, grid);
        const std::string t = num(s, 6);
        c.text(px(s) - Canvas::text_width(t) / 2, top + ph + 6, t, ink);
    }
    c.fill(left, top, 1, ph, ink);
    c.fill(left, top + ph - 1, pw, 1, ink);
    // the training loss of every batch, then the held-out loss over it
    for (size_t i = 1; i < g.step.size(); ++i)
        c.line(px(g.step[i - 1] + 1), py(g.train[i - 1]), px(g.step[i] + 1), py(g.train[i]),
               train_c);
    std::vector<std::pair<int, int>> held_out; // (x, y) of each evaluation
    for (size_t i = 0; i < g.step.size(); ++i)
        if (std::isfinite(g.val[i])) held_out.push_back({px(g.step[i] + 1), py(g.val[i])});
    for (size_t i = 1; i < held_out.size(); ++i) // one polyline in an SVG, then the points
        c.line(held_out[i - 1].first, held_out[i - 1].second, held_out[i].first, held_out[i].second,
               val_c, 2);
    for (auto [x, y] : held_out)
        c.fill(x - 2, y - 2, 5, 5, val_c);
    const std::string id = f.has_attr("/", "model_id") ? f.attr_str("/", "model_id") : f.name();
    c.text(left, 12, "loss (nats per token), " + id, ink);
    c.text(left + pw / 2 - 16, H - 20, "step", ink);
    // legend
    const int lx = left + pw - 200, ly = top + 10;
    c.fill(lx - 6, ly - 4, 200, 44, {255, 255, 255});
    c.fill(lx, ly + 7, 24, 2, train_c);
    c.text(lx + 32, ly, "training batch", ink);
    c.fill(lx, ly + 27, 24, 3, val_c);
    c.text(lx + 32, ly + 20, "held-out", ink);
    nlohmann::json layout = {{"x0", left},    {"y0", top},       {"w", pw},
                             {"h", ph},       {"step_lo", x_lo}, {"step_hi", x_hi},
                             {"loss_lo", lo}, {"loss_hi", hi}};
    c.write(out.path, {{"Software", "qkv inspect"}, {"qkv-plot", layout.dump()}});
    return "wrote " + out.path + " (" + std::to_string(W) + " x " + std::to_string(H) + ")\n";
}

} // namespace qkv
