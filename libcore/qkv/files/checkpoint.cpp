#include "qkv/files/checkpoint.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/base/fields.hpp"
#include "qkv/files/h5file.hpp"

#include <cstring>
#include <iomanip>
#include <sstream>

namespace qkv {

std::string hex64(uint64_t v) {
    std::ostringstream o;
    o << std::hex << std::setw(16) << std::setfill('0') << v;
    return o.str();
}

const std::vector<Field<TrainSettings>>& train_setting_fields() {
    static const std::vector<Field<TrainSettings>> fields = {
        {"steps", &TrainSettings::steps},
        {"batch", &TrainSettings::batch},
        {"context", &TrainSettings::context},
        {"warmup", &TrainSettings::warmup},
        {"eval_every", &TrainSettings::eval_every},
        {"eval_iters", &TrainSettings::eval_iters},
        {"save_every", &TrainSettings::save_every},
        {"lr", nullptr, &TrainSettings::lr},
        {"min_lr", nullptr, &TrainSettings::min_lr},
        {"weight_decay", nullptr, &TrainSettings::weight_decay},
        {"beta1", nullptr, &TrainSettings::beta1},
        {"beta2", nullptr, &TrainSettings::beta2},
        {"grad_clip", nullptr, &TrainSettings::grad_clip},
        {"val_fraction", nullptr, &TrainSettings::val_fraction},
    };
    return fields;
}

void write_checkpoint(const std::string& path, const ModelFile& src, const TokenizerData& tok,
                      Gpt& gpt, const TrainState& st, double seconds, const CorpusInfo& corpus,
                      const std::string& history,
                      const std::vector<std::pair<std::string, double>>& final_stats) {
    const Config& c = src.config();
    ModelWriter w(path, c, src.name(), history);
    Tensor W_U; // tied: W_E transposed
    for (const ParamInfo& p : gpt.layout().params) {
        const Tensor t = param_tensor(p, gpt.params().data());
        w.put(p.name, t);
        if (p.name == "/embed/W_E") W_U = transpose2d(t);
    }
    Tensor b_U = Tensor::zeros({c.vocab_size});
    std::memcpy(b_U.f32(), gpt.b_U().data(), c.vocab_size * sizeof(float));
    w.put("/unembed/W_U", W_U);
    w.put("/unembed/b_U", b_U);
    w.put_tokenizer(tok);

    H5File& f = w.file();
    const TrainSettings& s = st.s;
    const std::string g = "/train";
    f.make_group(g);
    f.set_attr(g, "step", st.step);
    visit_fields(train_setting_fields(), s,
                 [&](const auto& field, const auto& v) { f.set_attr(g, field.name, v); });
    f.set_attr(g, "seconds", seconds);
    f.set_attr(g, "seed", hex64(s.seed));
    f.set_attr(g, "corpus_fnv1a", hex64(corpus.hash));
    f.set_attr(g, "corpus_bytes", corpus.bytes);
    f.set_attr(g, "train_tokens", corpus.train_tokens);
    f.set_attr(g, "val_tokens", corpus.val_tokens);
    for (auto& [k, v] : final_stats)
        f.set_attr(g, k, v);
    for (const ParamInfo& p : gpt.layout().params) { // each under its weight's name
        f.write(g + "/adam_m" + p.name, param_tensor(p, st.m.data()));
        f.write(g + "/adam_v" + p.name, param_tensor(p, st.v.data()));
    }
    const int64_t k = static_cast<int64_t>(st.log.step.size());
    Tensor steps_t = Tensor::zeros({k}, DType::I32);
    if (k) std::memcpy(steps_t.i32(), st.log.step.data(), k * sizeof(int32_t));
    f.write(g + "/log/step", steps_t);
    f.write_f32(g + "/log/lr", {k}, st.log.lr.data());
    f.write_f32(g + "/log/train_loss", {k}, st.log.train_loss.data());
    f.write_f32(g + "/log/val_loss", {k}, st.log.val_loss.data());
    w.commit();
}

LossLog read_loss_log(const H5File& f) {
    if (!f.exists("/train/log/train_loss"))
        throw FormatError(f.name() +
                          ": no training log (/train/log): made by train, not model init?");
    LossLog log;
    Tensor step = f.read_i32("/train/log/step", 1);
    const int64_t n = step.numel();
    log.step.assign(step.i32(), step.i32() + n);
    for (auto [name, vec] : {std::pair<const char*, std::vector<float>*>{"lr", &log.lr},
                             {"train_loss", &log.train_loss},
                             {"val_loss", &log.val_loss}}) {
        Tensor t = f.read_f32(std::string("/train/log/") + name, 1);
        if (t.numel() != n)
            throw FormatError(f.name() + ":/train/log/" + name + ": " + std::to_string(t.numel()) +
                              " entries, /train/log/step has " + std::to_string(n));
        vec->assign(t.f32(), t.f32() + n);
    }
    return log;
}

namespace {

// Checkpoints of qkv 0.x before the schema kept the moments as one flat dataset in the trainer's
// old order: the weights in the schema's order except that each layer's W_Q, b_Q, W_K, b_K,
// W_V, b_V were one [d_model, 3 head d_head] matrix and one [3 head d_head] bias (the same
// size, at the same offset). Reordered here so that such a run resumes exactly.
void read_fused_moments(const H5File& f, const std::string& name, const Config& c,
                        const Layout& lay, std::vector<float>& out) {
    std::vector<float> old(lay.total);
    f.read_f32_into(name, {lay.total}, old.data());
    out = old;
    const int64_t D = c.d_model, H = c.n_heads, dh = c.d_head, A = H * dh;
    for (const LayerOffsets& o : lay.layers) {
        float* W[3] = {out.data() + o.W_Q, out.data() + o.W_K, out.data() + o.W_V};
        float* b[3] = {out.data() + o.b_Q, out.data() + o.b_K, out.data() + o.b_V};
        const float* fused = old.data() + o.W_Q; // [d_model, (q|k|v, head, d_head)]
        unpack_qkv(fused, H, H, D, dh, W);
        for (int x = 0; x < 3; ++x) // the fused bias [(q|k|v, head, d_head)] follows
            std::memcpy(b[x], fused + D * 3 * A + x * A, A * sizeof(float));
    }
}

void read_moments(const ModelFile& m, const Layout& lay, const std::string& group,
                  std::vector<float>& out) {
    const H5File& f = m.h5();
    if (!f.is_group(group)) return read_fused_moments(f, group, m.config(), lay, out);
    out.assign(lay.total, 0.0f);
    for (const ParamInfo& p : lay.params)
        f.read_f32_into(group + p.name, p.shape, out.data() + p.offset);
}

} // namespace

TrainState read_checkpoint(const ModelFile& m, const Layout& lay) {
    const H5File& f = m.h5();
    if (!f.exists("/train/adam_m"))
        throw FormatError(m.path() + ": not a checkpoint (no /train group): give it as --model to "
                                     "start training from it");
    TrainState st;
    const std::string g = "/train";
    st.step = f.attr_int(g, "step");
    visit_fields(train_setting_fields(), st.s,
                 [&](const auto& field, auto& v) { f.get_attr(g, field.name, v); });
    st.s.seed = std::stoull(f.attr_str(g, "seed"), nullptr, 16);
    st.seconds = f.attr_double(g, "seconds");
    read_moments(m, lay, g + "/adam_m", st.m);
    read_moments(m, lay, g + "/adam_v", st.v);
    st.log = read_loss_log(f);
    return st;
}

void read_params(const ModelFile& m, const Layout& lay, float* flat, std::vector<float>& b_U) {
    const H5File& f = m.h5();
    const Config& c = m.config();
    for (const ParamInfo& p : lay.params)
        f.read_f32_into(p.name, p.shape, flat + p.offset);
    const Tensor W_E = f.read_f32("/embed/W_E", 2);
    const Tensor W_U = f.read_f32("/unembed/W_U", 2);
    if (!is_transpose_of(W_E, W_U))
        throw FormatError(m.path() + ":/unembed/W_U: train ties the unembedding to W_E (as "
                                     "GPT-2 does), but this model's W_U is not W_E transposed");
    b_U.assign(c.vocab_size, 0.0f);
    f.read_f32_into("/unembed/b_U", {c.vocab_size}, b_U.data());
}

} // namespace qkv
