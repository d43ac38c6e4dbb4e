#include "commands/lens.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/activations.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/model/logit_lens.hpp"
#include "qkv/tokenizer/tokenizer.hpp"
#include "qkv/view/html_page.hpp"
#include "qkv/view/lens_grid.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace qkv {

namespace {

struct LensRow {
    std::string label; // TransformerLens's names: pre L (resid_pre), mid L, post L
    Tensor stream;     // [batch, pos, d_model]
};

std::string stream_label(Stage stage, int64_t layer) {
    if (stage == Stage::Embed) return "pre 0";
    return (stage == Stage::Attn ? "mid " : "post ") + std::to_string(layer);
}

// The streams of one file: a whole-model capture's /blocks/L/resid_pre (every layer saved), then
// its /resid; or the one stream of a stage file.
std::vector<LensRow> streams_of(Activations& a, int64_t n_layers) {
    std::vector<LensRow> rows;
    for (int64_t l = 0; l < n_layers; ++l) {
        const std::string name = "/blocks/" + std::to_string(l) + "/resid_pre";
        if (!a.file.exists(name)) continue;
        Tensor t = a.file.read_f32(name, 3);
        if (t.shape() != a.resid.shape())
            throw ShapeError(a.file.name() + ":" + name + ": shape " + shape_str(t.shape()) +
                             ", not /resid's " + shape_str(a.resid.shape()) +
                             " (block --save resid_pre without --positions)");
        rows.push_back({"pre " + std::to_string(l), std::move(t)});
    }
    rows.push_back({stream_label(a.stage, a.layer), a.resid});
    return rows;
}

} // namespace

std::string run_lens(const InspectOptions& opt) {
    if (opt.model.empty()) throw UsageError("--lens needs the model: -m MODEL.h5");
    ModelFile model = ModelFile::open(opt.model);
    const Config& cfg = model.config();
    std::vector<std::string> files = {opt.target};
    files.insert(files.end(), opt.more.begin(), opt.more.end());
    std::vector<LensRow> rows;
    std::vector<std::string> text; // the input tokens of the chosen sequence
    int64_t T = -1;
    for (const auto& path : files) {
        Activations a = read_activations(path, true, cfg.d_model);
        check_model(a, model.model_id(), opt.model);
        if (opt.batch < 0 || opt.batch >= a.batch())
            throw UsageError("--batch " + std::to_string(opt.batch) + ": " + a.file.name() +
                             " has batch " + std::to_string(a.batch()));
        if (T >= 0 && a.n_pos() != T)
            throw ShapeError(a.file.name() + ": " + std::to_string(a.n_pos()) +
                             " positions, not the " + std::to_string(T) + " of " + files[0]);
        T = a.n_pos();
        if (text.empty() && !a.token_text.empty())
            text.assign(a.token_text.begin() + opt.batch * T,
                        a.token_text.begin() + (opt.batch + 1) * T);
        for (auto& r : streams_of(a, cfg.n_layers))
            rows.push_back(std::move(r));
    }
    // [rows * pos, d_model]: the chosen sequence of every stream
    const int64_t D = cfg.d_model, R = static_cast<int64_t>(rows.size());
    std::vector<float> x(R * T * D);
    for (int64_t r = 0; r < R; ++r)
        std::copy_n(rows[r].stream.f32() + opt.batch * T * D, T * D, x.data() + r * T * D);
    auto be = make_backend(Device::CPU, 0);
    const std::vector<LensPrediction> pred =
        logit_lens(*be, cfg, model.load_unembed(*be), x.data(), R * T);

    Tokenizer tok(model.load_tokenizer());
    LensGrid g;
    g.title = "logit lens, " + model.model_id() + ": the top next token and its probability";
    g.rows = R;
    g.cols = T;
    for (auto& r : rows)
        g.row_labels.push_back(r.label);
    for (int64_t p = 0; p < T; ++p)
        g.col_labels.push_back(text.empty() ? std::to_string(p) : text[p]);
    for (auto& p : pred) {
        g.top.push_back(tok.token_text(p.token));
        g.prob.push_back(p.prob);
    }
    if (opt.json) {
        nlohmann::ordered_json j = {
            {"model_id", model.model_id()}, {"streams", g.row_labels}, {"tokens", g.col_labels}};
        nlohmann::ordered_json grid = nlohmann::ordered_json::array();
        for (int64_t r = 0; r < R; ++r) {
            nlohmann::ordered_json row = nlohmann::ordered_json::array();
            for (int64_t p = 0; p < T; ++p)
                row.push_back({{"id", pred[r * T + p].token},
                               {"token", g.top[r * T + p]},
                               {"prob", pred[r * T + p].prob}});
            grid.push_back(row);
        }
        j["top"] = grid;
        return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    if (!opt.html.empty()) return write_html(opt.html, lens_grid_html(g));
    if (!opt.png.empty()) return draw_lens_grid(g, {PictureFile::Format::Png, opt.png});
    if (!opt.svg.empty()) return draw_lens_grid(g, {PictureFile::Format::Svg, opt.svg});
    return lens_grid_text(g, opt.width, opt.color);
}

} // namespace qkv
