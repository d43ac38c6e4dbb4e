#include "qkv/files/activations.hpp"

#include "qkv/base/errors.hpp"

#include <cmath>

namespace qkv {

const char* stage_name(Stage s) {
    switch (s) {
    case Stage::Tokens:
        return "tokens";
    case Stage::Embed:
        return "embed";
    case Stage::Attn:
        return "attn";
    case Stage::Mlp:
        return "mlp";
    case Stage::Logits:
        return "logits";
    }
    return "?";
}

Stage parse_stage(const std::string& s, const std::string& where) {
    for (Stage st : {Stage::Tokens, Stage::Embed, Stage::Attn, Stage::Mlp, Stage::Logits})
        if (s == stage_name(st)) return st;
    throw FormatError(where + ": unknown stage '" + s + "'");
}

Activations read_activations(const std::string& path, bool need_resid, int64_t d_model) {
    return read_activations(H5File::open_read(path), need_resid, d_model);
}

Activations read_activations(H5File file, bool need_resid, int64_t d_model) {
    Activations a;
    a.file = std::move(file);
    const H5File& f = a.file;
    const std::string& name = f.name();
    const std::string format = f.has_attr("/", "format") ? f.attr_str("/", "format") : "";
    if (format == "qkv-model")
        throw FormatError(name + ": is a model file, expected an activation file (pass it as "
                                 "--model)");
    if (format != "qkv-activations")
        throw FormatError(name + ": not a qkv activation file (root attribute format != "
                                 "qkv-activations)");
    if (f.attr_int("/", "version") != 1)
        throw FormatError(name + ": unsupported activation file version");
    a.model_id = f.attr_str("/", "model_id");
    a.stage = parse_stage(f.attr_str("/", "stage"), name);
    a.layer = f.attr_int("/", "layer");
    a.history = f.has_attr("/", "history") ? f.attr_str("/", "history") : "";
    a.tokens = f.read_i32("/tokens", 2);
    if (f.exists("/token_text")) {
        a.token_text = f.read_strings("/token_text");
        if (static_cast<int64_t>(a.token_text.size()) != a.tokens.numel())
            throw ShapeError(name + ":/token_text: does not match /tokens " +
                             shape_str(a.tokens.shape()));
    }
    if (f.exists("/mask")) {
        const Tensor mask = f.read_i32("/mask", 2);
        if (mask.shape() != a.tokens.shape())
            throw ShapeError(name + ":/mask: shape " + shape_str(mask.shape()) +
                             " does not match /tokens " + shape_str(a.tokens.shape()));
        a.pad = Padding::from_mask(mask, name + ":/mask");
        if (f.has_attr("/mask", "pad_id"))
            a.pad.pad_id = static_cast<int32_t>(f.attr_int("/mask", "pad_id"));
    } else {
        a.pad = Padding::none(a.batch(), a.n_pos());
    }
    if (!need_resid) return a;
    if (a.stage == Stage::Tokens)
        throw ShapeError(name + ": is at stage tokens (no /resid); run embed first");
    if (!f.exists("/resid")) throw FormatError(name + ":/resid: dataset not found");
    a.resid = f.read_f32("/resid", 3);
    const Shape& s = a.resid.shape();
    if (s[0] != a.batch() || s[1] != a.n_pos())
        throw ShapeError(name + ":/resid: shape " + shape_str(s) + " does not match /tokens " +
                         shape_str(a.tokens.shape()));
    if (d_model > 0 && s[2] != d_model)
        throw ShapeError(name + ":/resid: width " + std::to_string(s[2]) +
                         " but the model has d_model " + std::to_string(d_model));
    const float* r = a.resid.f32();
    for (int64_t i = 0; i < a.resid.numel(); ++i)
        if (!std::isfinite(r[i])) {
            const int64_t per_seq = s[1] * s[2];
            throw FormatError(name + ":/resid: non-finite value (" + std::to_string(r[i]) +
                              ") at batch " + std::to_string(i / per_seq) + ", pos " +
                              std::to_string((i % per_seq) / s[2]));
        }
    return a;
}

void check_model(const Activations& in, const std::string& model_id,
                 const std::string& model_path) {
    if (in.model_id != model_id)
        throw ShapeError(in.file.name() + ": was made with model " + in.model_id + ", but " +
                         model_path + " is model " + model_id);
}

void check_order(const Activations& in, Stage next, int64_t layer, bool force) {
    if (force) return;
    std::string expected;
    bool ok = false;
    const std::string L = std::to_string(layer);
    if (next == Stage::Embed) {
        ok = in.stage == Stage::Tokens;
        expected = "stage tokens";
    } else if (next == Stage::Attn) {
        ok = layer == 0 ? in.stage == Stage::Embed
                        : (in.stage == Stage::Mlp && in.layer == layer - 1);
        expected = layer == 0 ? "stage embed" : "stage mlp at layer " + std::to_string(layer - 1);
    } else if (next == Stage::Mlp) {
        ok = in.stage == Stage::Attn && in.layer == layer;
        expected = "stage attn at layer " + L;
    } else {
        ok = true;
    }
    if (!ok)
        throw ShapeError(in.file.name() + ": is at stage " + stage_name(in.stage) +
                         (in.layer >= 0 ? " layer " + std::to_string(in.layer) : "") + ", but " +
                         stage_name(next) + " of layer " + L + " needs " + expected +
                         " (--force overrides)");
}

ActivationWriter::ActivationWriter(const std::string& path, const Activations& in)
    : out_(path), in_(in) {
    // Carry forward every dataset and group of the input except those rewritten below.
    for (const auto& name : in.file.list("/")) {
        if (name == "resid") continue;
        out_.file().copy_from(in.file, "/" + name, "/" + name);
    }
}

void ActivationWriter::finish(Stage stage, int64_t layer, const Tensor* resid,
                              const std::string& history_line) {
    H5File& f = out_.file();
    set_activation_attrs(f, in_.model_id, stage, layer,
                         in_.history + (in_.history.empty() ? "" : "\n") + history_line);
    // What earlier tools changed (interventions) stays on record through every later stage.
    if (!f.has_attr("/", "modified") && in_.file.has_attr("/", "modified"))
        f.set_attr("/", "modified", in_.file.attr_str("/", "modified"));
    if (resid) f.write("/resid", *resid);
}

void set_activation_attrs(H5File& f, const std::string& model_id, Stage stage, int64_t layer,
                          const std::string& history) {
    f.set_attr("/", "format", std::string("qkv-activations"));
    f.set_attr("/", "version", int64_t(1));
    f.set_attr("/", "model_id", model_id);
    f.set_attr("/", "stage", std::string(stage_name(stage)));
    f.set_attr("/", "layer", layer);
    f.set_attr("/", "history", history);
}

void write_tokens(H5File& f, const std::string& model_id, const Tensor& tokens,
                  const std::vector<std::string>& token_text, const std::string& history_line,
                  const Padding& pad) {
    set_activation_attrs(f, model_id, Stage::Tokens, -1, history_line);
    f.write("/tokens", tokens);
    f.write_strings("/token_text", tokens.shape(), token_text);
    if (pad.padded()) {
        f.write("/mask", pad.mask());
        f.set_attr("/mask", "pad_id", static_cast<int64_t>(pad.pad_id));
    }
}

void write_tokens_file(const std::string& path, const std::string& model_id, const Tensor& tokens,
                       const std::vector<std::string>& token_text, const std::string& history_line,
                       const Padding& pad) {
    H5Output out(path);
    write_tokens(out.file(), model_id, tokens, token_text, history_line, pad);
    out.commit();
}

} // namespace qkv
