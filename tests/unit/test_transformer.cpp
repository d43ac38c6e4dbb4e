// Generation with a key/value cache equals re-running the whole sequence at every step.
#include "qkv/files/model_file.hpp"
#include "qkv/model/kv_cache.hpp"
#include "qkv/model/transformer.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>

using namespace qkv;

TEST_CASE("transformer: KV-cache decoding equals a full re-run at every step (1e-5 relative)") {
    ModelInitOptions o;
    o.preset = "tiny";
    o.seed = 21;
    o.output = "unit_transformer.h5";
    model_init(o);
    ModelFile m = ModelFile::open(o.output);
    auto be = make_cpu_backend(2);
    Transformer net(m.load_all(*be), *be);
    const int64_t V = m.config().vocab_size;
    std::vector<int32_t> seq = {464, 2068, 7586, 21831};
    KVCache cache(*be, m.config());
    Tensor logits = net.step(seq.data(), static_cast<int64_t>(seq.size()), cache);
    for (int step = 0; step < 12; ++step) {
        // full re-run without a cache over the whole sequence so far
        KVCache fresh(*be, m.config());
        Tensor full = net.step(seq.data(), static_cast<int64_t>(seq.size()), fresh);
        float scale = 0, err = 0;
        for (int64_t i = 0; i < V; ++i) {
            scale = std::max(scale, std::abs(full.f32()[i]));
            err = std::max(err, std::abs(full.f32()[i] - logits.f32()[i]));
        }
        INFO("step " << step << ": max abs diff " << err << ", scale " << scale);
        REQUIRE(err <= 1e-5f * scale);
        const int32_t next = static_cast<int32_t>((seq.back() * 7919 + step * 104729) % V);
        seq.push_back(next);
        logits = net.step(&next, 1, cache);
    }
    REQUIRE(cache.length() == static_cast<int64_t>(seq.size()));
    std::remove(o.output.c_str());
}
