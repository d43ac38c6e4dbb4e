#include "checkpoint.hpp"

#include "errors.hpp"
#include "h5file.hpp"

#include <cstring>
#include <iomanip>
#include <sstream>

namespace qkv {

std::string hex64(uint64_t v) {
    std::ostringstream o;
    o << std::hex << std::setw(16) << std::setfill('0') << v;
    return o.str();
}

void write_checkpoint(const std::string& path, const ModelFile& src, Gpt& gpt, const TrainState& st,
                      const CorpusInfo& corpus, const std::string& history,
                      const std::vector<std::pair<std::string, double>>& final_stats) {
    const Config& c = src.config();
    std::string name = src.model_id();
    if (auto dash = name.rfind('-'); dash != std::string::npos) name = name.substr(0, dash);
    ModelWriter w(path, c, name, history);
    put_file_layout(c, gpt.layout(), gpt.params().data(),
                    [&](const std::string& n, const Tensor& t) { w.put(n, t); });
    const int64_t V = c.vocab_size, D = c.d_model;
    Tensor W_U = Tensor::zeros({D, V}), b_U = Tensor::zeros({V});
    const float* W_E = gpt.params().data() + gpt.layout().W_E;
    for (int64_t v = 0; v < V; ++v)
        for (int64_t d = 0; d < D; ++d)
            W_U.f32()[d * V + v] = W_E[v * D + d];
    std::memcpy(b_U.f32(), gpt.b_U().data(), V * sizeof(float));
    w.put("/unembed/W_U", W_U);
    w.put("/unembed/b_U", b_U);
    w.put_tokenizer(src.load_tokenizer());

    H5File& f = w.file();
    const TrainSettings& s = st.s;
    const std::string g = "/train";
    f.make_group(g);
    f.set_attr(g, "step", st.step);
    for (auto [k, v] : {std::pair<const char*, int64_t>{"steps", s.steps},
                        {"batch", s.batch},
                        {"context", s.context},
                        {"warmup", s.warmup},
                        {"eval_every", s.eval_every},
                        {"eval_iters", s.eval_iters},
                        {"save_every", s.save_every}})
        f.set_attr(g, k, v);
    for (auto [k, v] : {std::pair<const char*, double>{"lr", s.lr},
                        {"min_lr", s.min_lr},
                        {"weight_decay", s.weight_decay},
                        {"beta1", s.beta1},
                        {"beta2", s.beta2},
                        {"grad_clip", s.grad_clip},
                        {"val_fraction", s.val_fraction},
                        {"seconds", st.seconds}})
        f.set_attr(g, k, v);
    f.set_attr(g, "seed", hex64(s.seed));
    f.set_attr(g, "corpus_fnv1a", hex64(corpus.hash));
    f.set_attr(g, "corpus_bytes", corpus.bytes);
    f.set_attr(g, "train_tokens", corpus.train_tokens);
    f.set_attr(g, "val_tokens", corpus.val_tokens);
    for (auto& [k, v] : final_stats)
        f.set_attr(g, k, v);
    const int64_t n = static_cast<int64_t>(st.m.size());
    f.write_f32(g + "/adam_m", {n}, st.m.data());
    f.write_f32(g + "/adam_v", {n}, st.v.data());
    const int64_t k = static_cast<int64_t>(st.log.step.size());
    Tensor steps_t = Tensor::zeros({k}, DType::I32);
    if (k) std::memcpy(steps_t.i32(), st.log.step.data(), k * sizeof(int32_t));
    f.write(g + "/log/step", steps_t);
    f.write_f32(g + "/log/lr", {k}, st.log.lr.data());
    f.write_f32(g + "/log/train_loss", {k}, st.log.train_loss.data());
    f.write_f32(g + "/log/val_loss", {k}, st.log.val_loss.data());
    w.commit();
}

TrainState read_checkpoint(const ModelFile& m, int64_t n_params) {
    const H5File& f = m.h5();
    if (!f.exists("/train/adam_m"))
        throw FormatError(m.path() + ": not a checkpoint (no /train group): give it as --model to "
                                     "start training from it");
    TrainState st;
    const std::string g = "/train";
    st.step = f.attr_int(g, "step");
    TrainSettings& s = st.s;
    s.steps = f.attr_int(g, "steps");
    s.batch = f.attr_int(g, "batch");
    s.context = f.attr_int(g, "context");
    s.warmup = f.attr_int(g, "warmup");
    s.eval_every = f.attr_int(g, "eval_every");
    s.eval_iters = f.attr_int(g, "eval_iters");
    s.save_every = f.attr_int(g, "save_every");
    s.lr = f.attr_double(g, "lr");
    s.min_lr = f.attr_double(g, "min_lr");
    s.weight_decay = f.attr_double(g, "weight_decay");
    s.beta1 = f.attr_double(g, "beta1");
    s.beta2 = f.attr_double(g, "beta2");
    s.grad_clip = f.attr_double(g, "grad_clip");
    s.val_fraction = f.attr_double(g, "val_fraction");
    s.seed = std::stoull(f.attr_str(g, "seed"), nullptr, 16);
    st.seconds = f.attr_double(g, "seconds");
    st.m.assign(n_params, 0.0f);
    st.v.assign(n_params, 0.0f);
    f.read_f32_into(g + "/adam_m", {n_params}, st.m.data());
    f.read_f32_into(g + "/adam_v", {n_params}, st.v.data());
    Tensor steps = f.read_i32(g + "/log/step", 1);
    const int64_t k = steps.numel();
    st.log.step.assign(steps.i32(), steps.i32() + k);
    for (auto [name, vec] : {std::pair<const char*, std::vector<float>*>{"lr", &st.log.lr},
                             {"train_loss", &st.log.train_loss},
                             {"val_loss", &st.log.val_loss}}) {
        vec->assign(k, 0.0f);
        f.read_f32_into(g + "/log/" + name, {k}, vec->data());
    }
    return st;
}

// Mean loss over fixed windows evenly spread over the held-out tokens (the same every time).

} // namespace qkv
