// Loads a model with libqkv, tokenizes a text, embeds it and runs layer 0's attention; prints
// the stream after it at the last position, d_model numbers a line.
#include <qkv/files/model_file.hpp>
#include <qkv/model/attention.hpp>
#include <qkv/model/embed.hpp>
#include <qkv/tensor/backend.hpp>
#include <qkv/tokenizer/tokenizer.hpp>
#include <qkv/version.hpp>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: first_layer MODEL TEXT (libqkv %s)\n", QKV_VERSION);
        return 2;
    }
    try {
        const qkv::ModelFile model = qkv::ModelFile::open(argv[1]);
        const qkv::Config& cfg = model.config();
        const qkv::Tokenizer tok(model.load_tokenizer());
        const std::vector<int32_t> ids = tok.encode(argv[2]);
        qkv::Tensor tokens =
            qkv::Tensor::zeros({1, static_cast<int64_t>(ids.size())}, qkv::DType::I32);
        std::copy(ids.begin(), ids.end(), tokens.i32());
        auto be = qkv::make_cpu_backend(1);
        const qkv::ModelWeights w = model.load_all(*be);
        qkv::Tensor resid = qkv::embed_forward(*be, cfg, w.embed, tokens, 0, false, "text").resid;
        qkv::AttentionResult r;
        qkv::attention_forward(*be, cfg, w.blocks[0].ln1, w.blocks[0].attn, resid, nullptr, true,
                               {}, r);
        const float* last = resid.f32() + (ids.size() - 1) * cfg.d_model;
        for (int64_t d = 0; d < cfg.d_model; ++d)
            std::printf("%.9g\n", last[d]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "first_layer: %s\n", e.what());
        return 1;
    }
    return 0;
}
