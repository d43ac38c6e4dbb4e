// train_model: GPT-2 as training sees it. Every trained weight lives in one flat buffer (so the
// optimizer and the gradient norm are single loops) in the layout the forward pass uses (W_Q,
// W_K and W_V of all heads side by side); Gpt runs the forward pass keeping what the backward
// pass reads (backprop), then the backward pass, last layer first.
#pragma once
#include "base/thread_pool.hpp"
#include "model/schema.hpp"
#include "model/weights.hpp"
#include "tensor/backend.hpp"
#include "train/backprop.hpp"

#include <functional>
#include <string>
#include <vector>

namespace qkv {

struct ParamInfo {
    std::string name; // training-layout name
    Shape shape;
    int64_t offset = 0;
    bool decay = false; // weight decay: matrices and embeddings, not biases or LayerNorm
};

struct LayerOffsets {
    int64_t ln1_w, ln1_b, W_QKV, b_QKV, W_O, b_O, ln2_w, ln2_b, W_in, b_in, W_out, b_out;
};

struct Layout {
    std::vector<ParamInfo> params;
    int64_t total = 0;
    int64_t W_E = 0, W_pos = 0, lnf_w = 0, lnf_b = 0;
    std::vector<LayerOffsets> layers;

    explicit Layout(const Config& c) {
        const int64_t D = c.d_model, A = c.n_heads * c.d_head, M = c.d_mlp;
        auto add = [&](const std::string& name, const Shape& s, bool decay) {
            params.push_back({name, s, total, decay});
            total += shape_numel(s);
            return params.back().offset;
        };
        W_E = add("/embed/W_E", {c.vocab_size, D}, true);
        W_pos = add("/pos_embed/W_pos", {c.n_ctx, D}, true);
        for (int64_t l = 0; l < c.n_layers; ++l) {
            const std::string g = block_group(l);
            LayerOffsets o;
            o.ln1_w = add(g + "/ln1/w", {D}, false);
            o.ln1_b = add(g + "/ln1/b", {D}, false);
            o.W_QKV = add(g + "/attn/W_QKV", {D, 3 * A}, true);
            o.b_QKV = add(g + "/attn/b_QKV", {3 * A}, false);
            o.W_O = add(g + "/attn/W_O", {A, D}, true);
            o.b_O = add(g + "/attn/b_O", {D}, false);
            o.ln2_w = add(g + "/ln2/w", {D}, false);
            o.ln2_b = add(g + "/ln2/b", {D}, false);
            o.W_in = add(g + "/mlp/W_in", {D, M}, true);
            o.b_in = add(g + "/mlp/b_in", {M}, false);
            o.W_out = add(g + "/mlp/W_out", {M, D}, true);
            o.b_out = add(g + "/mlp/b_out", {D}, false);
            layers.push_back(o);
        }
        lnf_w = add("/ln_final/w", {D}, false);
        lnf_b = add("/ln_final/b", {D}, false);
    }
};

using PutTensor = std::function<void(const std::string& name, const Tensor& t)>;

// Hands a flat buffer (weights or gradients) to put under the model file's names and shapes:
// per-head W_Q/W_K/W_V [head, d_model, d_head], b_Q/b_K/b_V [head, d_head], W_O
// [head, d_head, d_model].
void put_file_layout(const Config& c, const Layout& lay, const float* flat, const PutTensor& put);

// Copies a model's weights (on the CPU) into the flat buffer, and b_U (not trained) apart. The
// unembedding must be tied (W_U = W_E^T), as model init and GPT-2 make it; where names the
// model in errors.
void load_params(const ModelWeights& m, const std::string& where, const Layout& lay, float* flat,
                 std::vector<float>& b_U);

class Gpt {
  public:
    Gpt(const Config& c, Backend& be, ThreadPool& pool, int64_t batch, int64_t pos);
    const Layout& layout() const { return lay_; }
    std::vector<float>& params() { return params_; }
    std::vector<float>& grads() { return grads_; }
    std::vector<float>& b_U() { return b_U_; }
    const std::vector<float>& losses() const { return losses_; }

    // Mean cross-entropy of predicting y from x (both [batch, pos], batch <= B, pos <= T);
    // with grad, the gradients of every parameter are added into grads().
    double forward(const int32_t* x, const int32_t* y, int64_t batch, int64_t pos, bool grad);

  private:
    Config cfg_;
    Layout lay_;
    bp::Ctx ctx_;
    int64_t B_, T_;
    std::vector<float> params_, grads_, b_U_;
    std::vector<float> res_, ln_, ln_stats_, qkv_, pattern_, z_, pre_, post_, logits_, losses_;
    std::vector<float> dres_, dln_, dqkv_, dz_, dpost_, dpre_;
};

} // namespace qkv
