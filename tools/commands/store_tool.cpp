#include "commands/store_tool.hpp"

#include "commands/prompt.hpp"
#include "qkv/base/errors.hpp"
#include "qkv/files/activation_store.hpp"
#include "qkv/files/dimension_names.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/model/embed.hpp"
#include "qkv/tensor/backend.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>

namespace qkv {

namespace {

// One window's values of a site: [pos, ...] past the batch, and where the site's files name
// it (dimension_names.hpp).
struct SiteKind {
    Shape rest;
    std::string path;
};

SiteKind site_kind(const Config& cfg, const std::string& name) {
    const int64_t H = cfg.n_heads, KV = cfg.n_kv_heads, Dh = cfg.d_head, D = cfg.d_model;
    if (name == "resid_pre" || name == "resid_mid") return {{D}, "/" + name};
    if (name == "q" || name == "z") return {{H, Dh}, "/attn/" + name};
    if (name == "k" || name == "v") return {{KV, Dh}, "/attn/" + name};
    if (name == "head_out") return {{H, D}, "/attn/head_out"};
    if (name == "out") return {{D}, "/attn/out"};
    if (name == "mlp_out") return {{D}, "/mlp/out"};
    if (name == "pre" || name == "pre_linear" || name == "post")
        return {{cfg.d_mlp}, "/mlp/" + name};
    throw UsageError("--save " + name +
                     ": a store keeps per-position sites (resid_pre, resid_mid, "
                     "q, k, v, z, head_out, out, pre, pre_linear, post, mlp_out)");
}

const Tensor& site_of(const BlockResult& r, const std::string& name) {
    if (name == "resid_pre") return r.resid_pre;
    if (name == "resid_mid") return r.resid_mid;
    if (name == "q") return r.attn.q;
    if (name == "k") return r.attn.k;
    if (name == "v") return r.attn.v;
    if (name == "z") return r.attn.z;
    if (name == "head_out") return r.attn.head_out;
    if (name == "out") return r.attn.out;
    if (name == "pre") return r.mlp.pre;
    if (name == "pre_linear") return r.mlp.pre_linear;
    if (name == "post") return r.mlp.post;
    return r.mlp.out; // mlp_out
}

} // namespace

void run_block_store(const BlockOptions& opt) {
    const auto& st = opt.store;
    if (st.corpus.empty() || st.append.empty() || st.window <= 0)
        throw UsageError("an activation store needs -f CORPUS, --window N and --append STORE.h5");
    if (opt.save.empty())
        throw UsageError("--append: give the sites to store with --save (e.g. resid_pre)");
    if (!opt.input.empty() || opt.common.output != "-")
        throw UsageError("--append writes the store: no input file and no -o");
    if (!opt.sweep.empty() || !opt.ablate_heads.empty() || !opt.patch_heads.empty() ||
        !opt.scale_heads.empty() || !opt.sites.patch.empty() || !opt.sites.ablate.empty() ||
        !opt.sites.add.empty())
        throw UsageError("--append stores the model's own activations: no sweep or intervention");
    if (opt.common.model.empty()) throw UsageError("--model: a model file is required");
    ModelFile model = ModelFile::open(opt.common.model);
    const Config& cfg = model.config();
    const LayerRange range = parse_layer_range(opt.layers, cfg.n_layers, "--layers");
    const int64_t N = st.window, S = st.stride > 0 ? st.stride : st.window;
    if (N > cfg.n_ctx)
        throw UsageError("--window " + std::to_string(N) +
                         ": over the model's context n_ctx = " + std::to_string(cfg.n_ctx));
    if (st.stride < 0) throw UsageError("--stride: at least 1");
    const BlockSaves saves = block_saves(cfg, opt.save, opt.common.model);
    std::vector<int32_t> kept;
    for (int64_t p : opt.positions.empty() ? std::vector<int64_t>()
                                           : parse_index_list(opt.positions, N, "--positions"))
        kept.push_back(static_cast<int32_t>(p));
    if (kept.empty())
        for (int64_t p = 0; p < N; ++p)
            kept.push_back(static_cast<int32_t>(p));
    const int64_t K = static_cast<int64_t>(kept.size());

    // The corpus's tokens (with BOS where the tokenizer adds one) and its windows.
    Tokenizer tok(model.load_tokenizer());
    PromptSource src;
    src.file = st.corpus;
    const Tensor ids = read_prompt(src, model, tok).tokens; // [1, n]
    const int64_t n = ids.dim(1);
    if (n < N)
        throw UsageError(st.corpus + ": " + std::to_string(n) + " tokens, fewer than a window of " +
                         std::to_string(N));
    const int64_t n_windows = (n - N) / S + 1;

    StoreSpec spec;
    spec.model_id = model.model_id();
    spec.window = N;
    spec.stride = S;
    spec.positions = kept;
    spec.corpus = corpus_digest(ids.i32(), n);
    for (int64_t l = range.start; l < range.stop; ++l)
        for (const std::string& name : opt.save) {
            const SiteKind kind = site_kind(cfg, name);
            StoreSite s{l, name, {K}, {}};
            s.row.insert(s.row.end(), kind.rest.begin(), kind.rest.end());
            s.dims = dimension_names(kind.path, static_cast<int>(s.row.size()) + 1);
            if (!s.dims.empty()) s.dims[0] = "window";
            spec.sites.push_back(std::move(s));
        }
    ActivationStore store = ActivationStore::open(st.append, spec);

    auto be = make_backend(parse_device(opt.common.device), opt.common.threads);
    const EmbedWeights embed = model.load_embed(*be);
    std::vector<BlockWeights> layers;
    for (int64_t l = 0; l < range.stop; ++l)
        layers.push_back(model.load_block(l, *be));
    const auto progress = terminal_progress("storing " + st.append, opt.common.quiet);
    const int64_t per_batch = std::max<int64_t>(1, 4096 / N); // windows run together
    const int64_t first = store.windows();
    std::vector<std::vector<float>> rows(spec.sites.size());
    const auto start = std::chrono::steady_clock::now();
    std::chrono::duration<double> writing{0};
    for (int64_t w0 = first; w0 < n_windows; w0 += per_batch) {
        const int64_t B = std::min(per_batch, n_windows - w0);
        Tensor tokens = Tensor::zeros({B, N}, DType::I32); // [batch, pos]
        for (int64_t b = 0; b < B; ++b)
            std::memcpy(tokens.i32() + b * N, ids.i32() + (w0 + b) * S, N * sizeof(int32_t));
        Tensor resid = embed_forward(*be, cfg, embed, tokens, 0, false, st.corpus).resid;
        size_t site = 0;
        for (int64_t l = 0; l < range.stop; ++l) {
            const bool kept_layer = l >= range.start;
            BlockResult r;
            block_forward(*be, cfg, layers[l], resid, nullptr, kept_layer ? saves : BlockSaves(),
                          &r);
            if (!kept_layer) continue;
            for (const std::string& name : opt.save) {
                const Tensor host = be->to_host(site_of(r, name)); // [batch, pos, ...]
                const int64_t inner = host.numel() / (B * N);
                std::vector<float>& out = rows[site++];
                out.resize(static_cast<size_t>(B * K * inner)); // [batch, kept, ...]
                for (int64_t b = 0; b < B; ++b)
                    for (int64_t i = 0; i < K; ++i)
                        std::memcpy(out.data() + (b * K + i) * inner,
                                    host.f32() + (b * N + kept[i]) * inner, inner * sizeof(float));
            }
        }
        std::vector<const float*> ptrs;
        for (auto& r : rows)
            ptrs.push_back(r.data());
        const auto t0 = std::chrono::steady_clock::now();
        store.append(B, tokens.i32(), ptrs);
        writing += std::chrono::steady_clock::now() - t0;
        if (progress) progress(w0 + B - first, n_windows - first);
    }
    if (opt.common.quiet) return;
    const double all =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char figures[160];
    std::snprintf(figures, sizeof figures,
                  "%.2f s, %.0f tokens/s; writing %.2f s, %.1f%% over the forward passes", all,
                  (n_windows - first) * N / std::max(all, 1e-9), writing.count(),
                  100 * writing.count() / std::max(all - writing.count(), 1e-9));
    std::cerr << "block: " << st.append << ": windows " << first << ".." << n_windows << " of " << N
              << " tokens stored (" << n_windows - first << " this run, "
              << n - ((n_windows - 1) * S + N) << " tokens at the end in no window; " << figures
              << ")\n";
}

} // namespace qkv
