// train_model: GPT-2 as training sees it. Every trained weight lives in one flat buffer (so the
// optimizer and the gradient norm are single loops), the model file's datasets one after the
// other in the schema's order and layout (per head: W_Q [head, d_model, d_head], ...); Gpt runs
// the forward pass keeping what the backward pass reads (backprop), then the backward pass,
// last layer first.
#pragma once
#include "qkv/base/thread_pool.hpp"
#include "qkv/model/schema.hpp"
#include "qkv/tensor/backend.hpp"
#include "qkv/train/backprop.hpp"

#include <string>
#include <vector>

namespace qkv {

struct ParamInfo {
    std::string name; // the model file's dataset, e.g. "/blocks/0/attn/W_Q"
    Shape shape;
    int64_t offset = 0; // in the flat buffer
    bool decay = false; // weight decay: matrices and embeddings, not biases or LayerNorm
};

// Where each weight of a layer starts in the flat buffer.
struct LayerOffsets {
    int64_t ln1_w, ln1_b, W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O, ln2_w, ln2_b, W_in, b_in, W_out,
        b_out;
};

// The trained weights of the schema (model_params) in its order: the flat buffer's layout.
struct Layout {
    std::vector<ParamInfo> params;
    int64_t total = 0;
    int64_t W_E = 0, W_pos = 0, lnf_w = 0, lnf_b = 0;
    std::vector<LayerOffsets> layers;
    explicit Layout(const Config& c);
};

// One weight of a flat buffer (weights, gradients or moments) as a host tensor of its shape.
Tensor param_tensor(const ParamInfo& p, const float* flat);

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
    std::vector<float> W_QKV_, dW_QKV_; // one layer's W_Q, W_K, W_V (gradients) packed: scratch
};

} // namespace qkv
