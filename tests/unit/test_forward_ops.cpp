// attention, mlp and embed on hand-made weights whose results can be worked out by hand.
#include "qkv/base/errors.hpp"
#include "qkv/model/attention.hpp"
#include "qkv/model/embed.hpp"
#include "qkv/model/mlp.hpp"

#include <catch2/catch.hpp>
#include <cmath>

using namespace qkv;

namespace {
Config small() {
    Config c;
    c.n_layers = 1;
    c.d_model = 4;
    c.n_heads = 2;
    c.d_head = 2;
    c.d_mlp = 8;
    c.n_ctx = 8;
    c.vocab_size = 10;
    return c;
}
LayerNormWeights ln_identity(int64_t d) {
    LayerNormWeights ln{Tensor::zeros({d}), Tensor::zeros({d})};
    for (int64_t i = 0; i < d; ++i)
        ln.w.f32()[i] = 1.0f;
    return ln;
}
} // namespace

TEST_CASE("attention: zero queries and keys give a uniform causal pattern") {
    auto be = make_cpu_backend(1);
    Config c = small();
    AttentionWeights w{Tensor::zeros({4, 12}), Tensor::zeros({12}), Tensor::zeros({2, 2, 4}),
                       Tensor::zeros({4})};
    // value-down picks feature 0 for head 0 and feature 1 for head 1; value-up writes them back
    w.W_QKV.f32()[0 * 12 + 8] = 1.0f;      // W_V head 0, d_head 0 <- feature 0
    w.W_QKV.f32()[1 * 12 + 10] = 1.0f;     // W_V head 1, d_head 0 <- feature 1
    w.W_O.f32()[0 * 8 + 0 * 4 + 2] = 1.0f; // head 0, d_head 0 -> feature 2
    w.W_O.f32()[1 * 8 + 0 * 4 + 3] = 1.0f; // head 1, d_head 0 -> feature 3
    w.b_O.f32()[0] = 0.25f;
    Tensor resid = Tensor::zeros({1, 3, 4});
    for (int p = 0; p < 3; ++p) {
        resid.f32()[p * 4 + 0] = float(p);
        resid.f32()[p * 4 + 1] = -float(p);
    }
    Tensor before = Tensor::zeros({1, 3, 4});
    std::copy(resid.f32(), resid.f32() + 12, before.f32());
    AttentionSaves saves;
    saves.pattern = saves.head_out = saves.out = saves.z = true;
    AttentionResult r;
    attention_forward(*be, c, ln_identity(4), w, resid, nullptr, true, saves, r);
    // pattern row q is uniform over keys 0..q
    REQUIRE(r.pattern.f32()[0] == 1.0f);
    REQUIRE(r.pattern.f32()[1 * 3 + 0] == Approx(0.5f));
    REQUIRE(r.pattern.f32()[2 * 3 + 2] == Approx(1.0f / 3));
    REQUIRE(r.pattern.f32()[0 * 3 + 1] == 0.0f);
    // head outputs plus b_O equal out, and out was added to the residual stream
    for (int p = 0; p < 3; ++p)
        for (int i = 0; i < 4; ++i) {
            const float sum = r.head_out.f32()[(p * 2 + 0) * 4 + i] +
                              r.head_out.f32()[(p * 2 + 1) * 4 + i] + (i == 0 ? 0.25f : 0.0f);
            REQUIRE(sum == Approx(r.out.f32()[p * 4 + i]).margin(1e-6));
            REQUIRE(resid.f32()[p * 4 + i] ==
                    Approx(before.f32()[p * 4 + i] + r.out.f32()[p * 4 + i]).margin(1e-6));
        }
    // head 0's value at position 2 is the mean of the LayerNormed feature 0 over positions 0..2
    REQUIRE(r.head_out.f32()[(2 * 2 + 0) * 4 + 2] == Approx(r.z.f32()[(2 * 2 + 0) * 2 + 0]));
}

TEST_CASE("mlp: zero weights add only b_out, saves hold pre and post") {
    auto be = make_cpu_backend(1);
    Config c = small();
    MlpWeights w{Tensor::zeros({4, 8}), Tensor::zeros({8}), Tensor::zeros({8, 4}),
                 Tensor::zeros({4})};
    for (int i = 0; i < 8; ++i)
        w.b_in.f32()[i] = float(i) - 4.0f;
    w.b_out.f32()[1] = 3.0f;
    Tensor resid = Tensor::zeros({2, 2, 4});
    MlpResult r;
    MlpSaves saves;
    saves.pre = saves.post = true;
    mlp_forward(*be, c, ln_identity(4), w, resid, saves, r);
    REQUIRE(r.pre_linear.empty()); // (a gated MLP's only)
    REQUIRE(r.pre.shape() == Shape{2, 2, 8});
    REQUIRE(r.pre.f32()[8 + 7] == 3.0f);
    REQUIRE(r.post.f32()[8 + 7] ==
            Approx(3.0 * 0.5 * (1 + std::tanh(0.7978845608 * (3 + 0.044715 * 27)))));
    REQUIRE(resid.f32()[1] == 3.0f);
    REQUIRE(resid.f32()[15] == 0.0f);
}

TEST_CASE("embed: token plus position, bad ids and long sequences are errors") {
    auto be = make_cpu_backend(1);
    Config c = small();
    EmbedWeights w{Tensor::zeros({10, 4}), Tensor::zeros({8, 4})};
    for (int i = 0; i < 40; ++i)
        w.W_E.f32()[i] = float(i);
    for (int i = 0; i < 32; ++i)
        w.W_pos.f32()[i] = 100.0f * i;
    Tensor tok = Tensor::zeros({1, 2}, DType::I32);
    tok.i32()[0] = 9;
    tok.i32()[1] = 0;
    EmbedResult r = embed_forward(*be, c, w, tok, 0, true, "t");
    REQUIRE(r.resid.f32()[0] == 36.0f);
    REQUIRE(r.resid.f32()[4] == 400.0f);
    REQUIRE(r.pos.f32()[5] == 500.0f);
    tok.i32()[1] = 10;
    REQUIRE_THROWS_WITH(embed_forward(*be, c, w, tok, 0, false, "t"),
                        Catch::Contains("outside the vocabulary"));
    tok.i32()[1] = -1;
    REQUIRE_THROWS_AS(embed_forward(*be, c, w, tok, 0, false, "t"), ShapeError);
    Tensor long_tok = Tensor::zeros({1, 9}, DType::I32);
    REQUIRE_THROWS_WITH(embed_forward(*be, c, w, long_tok, 0, false, "t"),
                        Catch::Contains("n_ctx"));
}
