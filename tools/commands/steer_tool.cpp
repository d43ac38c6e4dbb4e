#include "commands/steer_tool.hpp"

#include "commands/prompt.hpp"
#include "qkv/files/activations.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/model/embed.hpp"
#include "qkv/model/transformer.hpp"
#include "qkv/tensor/backend.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>

namespace qkv {

namespace {

// The prompts of a file, one a line (empty lines skipped), as one right-padded batch.
PaddedBatch read_prompts(const std::string& path, const Tokenizer& tok, bool bos,
                         const std::string& option) {
    require_input(path);
    const std::vector<char> data = read_all(path);
    EncodeOptions eo;
    eo.bos = bos;
    std::vector<std::vector<int32_t>> seqs;
    for (const std::string& line : lines_of(std::string(data.begin(), data.end()))) {
        if (line.empty()) continue;
        seqs.push_back(tok.encode(line, eo));
        if (seqs.back().empty()) seqs.pop_back();
    }
    if (seqs.empty()) throw UsageError(option + " " + path + ": no prompts (one a line)");
    return pad_batch(seqs, false, std::max(tok.eot_id(), 0));
}

// The mean of the stream entering layer `layer` [d_model], in double, over each prompt's last
// token or all of its tokens; the number of vectors averaged.
std::vector<double> mean_stream(const PaddedBatch& batch, int64_t layer, bool all,
                                const ModelWeights& w, Backend& be, int64_t& count) {
    const Config& cfg = w.config;
    const int64_t B = batch.tokens.dim(0), T = batch.tokens.dim(1), D = cfg.d_model;
    if (T > cfg.n_ctx)
        throw ShapeError("a prompt of " + std::to_string(T) + " tokens is longer than n_ctx");
    EmbedResult e = embed_forward(be, cfg, w.embed, batch.tokens, 0, false, "steer", &batch.pad);
    for (int64_t l = 0; l < layer; ++l)
        block_forward(be, cfg, w.blocks[l], e.resid, nullptr, {}, nullptr, nullptr, &batch.pad);
    const Tensor resid = be.to_host(e.resid); // [batch, pos, d_model]
    std::vector<double> sum(D, 0.0);
    count = 0;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = all ? batch.pad.begin(b) : batch.pad.end(b) - 1; t < batch.pad.end(b);
             ++t, ++count)
            for (int64_t i = 0; i < D; ++i)
                sum[i] += resid.f32()[(b * T + t) * D + i];
    for (double& v : sum)
        v /= static_cast<double>(count);
    return sum;
}

} // namespace

void run_steer(const SteerOptions& opt) {
    if (opt.positive.empty() || opt.negative.empty())
        throw UsageError("give both prompt sets: --positive FILE and --negative FILE");
    ModelFile model = ModelFile::open(opt.common.model);
    const Config& cfg = model.config();
    model.check_layer(opt.layer, "--layer");
    Tokenizer tok(model.load_tokenizer());
    const PaddedBatch pos = read_prompts(opt.positive, tok, !opt.no_bos, "--positive");
    const PaddedBatch neg = read_prompts(opt.negative, tok, !opt.no_bos, "--negative");
    auto be = make_backend(parse_device(opt.common.device), opt.common.threads);
    const ModelWeights w = model.load_all(*be);
    int64_t n_pos = 0, n_neg = 0;
    const std::vector<double> a = mean_stream(pos, opt.layer, opt.all_positions, w, *be, n_pos);
    const std::vector<double> b = mean_stream(neg, opt.layer, opt.all_positions, w, *be, n_neg);
    Tensor vec = Tensor::zeros({cfg.d_model}); // [d_model]
    double norm = 0;
    for (int64_t i = 0; i < cfg.d_model; ++i) {
        vec.f32()[i] = static_cast<float>(a[i] - b[i]);
        norm += (a[i] - b[i]) * (a[i] - b[i]);
    }
    H5Output out(opt.common.output);
    H5File& f = out.file();
    f.write("/steer/vector", vec);
    f.set_attr("/", "model_id", model.model_id());
    f.set_attr("/", "history", history_line(opt.common, be->describe()));
    f.set_attr("/steer", "layer", opt.layer);
    f.set_attr("/steer", "site", std::string("resid_pre"));
    f.set_attr("/steer", "positions", std::string(opt.all_positions ? "all" : "last"));
    f.set_attr("/steer", "positive_vectors", n_pos);
    f.set_attr("/steer", "negative_vectors", n_neg);
    out.commit();
    if (!opt.common.quiet)
        std::cerr << "steer: layer " << opt.layer << " resid_pre, " << n_pos << " - " << n_neg
                  << " vectors, norm " << std::sqrt(norm) << '\n';
}

} // namespace qkv
