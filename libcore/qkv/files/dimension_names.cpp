#include "qkv/files/dimension_names.hpp"

#include "qkv/files/h5_api.hpp"
#include "qkv/model/schema.hpp"

#include <H5DSpublic.h>

#include <utility>

namespace qkv {

namespace {

using Names = std::vector<std::string>;

// By the end of a dataset's path (so the same for /attn/q and /blocks/3/attn/q).
const std::vector<std::pair<std::string, Names>>& table() {
    static const Names batch_pos = {"batch", "pos"}, stream = {"batch", "pos", "d_model"};
    static const std::vector<std::pair<std::string, Names>> t = {
        {"/tokens", batch_pos},
        {"/store/positions", {"pos"}}, // the positions of a window kept
        {"/token_text", batch_pos},
        {"/mask", batch_pos},
        {"/resid", stream},
        {"/resid_pre", stream},
        {"/resid_mid", stream},
        {"/embed/token", stream},
        {"/embed/pos", stream},
        {"/attn/scores", {"batch", "head", "query_pos", "key_pos"}},
        {"/attn/pattern", {"batch", "head", "query_pos", "key_pos"}},
        {"/attn/q", {"batch", "pos", "head", "d_head"}},
        {"/attn/z", {"batch", "pos", "head", "d_head"}},
        {"/attn/k", {"batch", "pos", "kv_head", "d_head"}},
        {"/attn/v", {"batch", "pos", "kv_head", "d_head"}},
        {"/attn/head_out", {"batch", "pos", "head", "d_model"}},
        {"/attn/out", stream},
        {"/mlp/pre", {"batch", "pos", "d_mlp"}},
        {"/mlp/pre_linear", {"batch", "pos", "d_mlp"}},
        {"/mlp/post", {"batch", "pos", "d_mlp"}},
        {"/mlp/out", stream},
        {"/logits", {"batch", "pos", "vocab"}},
        {"/score/logprob", batch_pos},
        {"/score/entropy", batch_pos},
        {"/score/rank", batch_pos},
        {"/score/next_logprobs", {"batch", "pos", "vocab"}},
        {"/attribution/heads", {"batch", "layer", "head"}},
        {"/attribution/parts", {"batch", "part"}},
        {"/attribution/labels", {"part"}},
        {"/attribution/remaining", {"batch"}},
        {"/attribution/logit_diff", {"batch"}},
        {"/attribution/position", {"batch"}},
        {"/atp/heads", {"layer", "head"}},
        {"/atp/positions", {"layer", "pos"}},
        {"/atp/grad_z", {"layer", "pos", "head", "d_head"}},
        {"/atp/grad_resid_pre", {"layer", "pos", "d_model"}},
        {"/sweep/metric", {"layer", "variant"}},
        {"/sweep/change", {"layer", "variant"}},
        {"/steer/vector", {"d_model"}},
        {"/blocks/positions", {"pos"}},
        {"/generate/logprobs", {"pos"}},
    };
    return t;
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

} // namespace

std::vector<std::string> dimension_names(const std::string& dataset, int rank) {
    Names names = weight_dims(dataset);
    if (names.empty())
        for (const auto& [tail, n] : table())
            if (dataset == tail || ends_with(dataset, tail)) {
                names = n;
                break;
            }
    if (static_cast<int>(names.size()) != rank) return {};
    return names;
}

void label_dimensions(int64_t id, const std::string& dataset, int rank) {
    label_dimensions(id, dimension_names(dataset, rank));
}

void label_dimensions(int64_t id, const std::vector<std::string>& names) {
    for (size_t i = 0; i < names.size(); ++i)
        H5DSset_label(id, static_cast<unsigned>(i), names[i].c_str());
}

std::vector<std::string> read_dimension_labels(int64_t id, int rank) {
    std::vector<std::string> labels(rank);
    for (int i = 0; i < rank; ++i) {
        const ssize_t n = H5DSget_label(id, static_cast<unsigned>(i), nullptr, 0);
        if (n <= 0 || n > 256) continue; // none, or not a name
        std::vector<char> buf(static_cast<size_t>(n) + 1, '\0');
        if (H5DSget_label(id, static_cast<unsigned>(i), buf.data(), buf.size()) > 0)
            labels[i] = buf.data();
    }
    return labels;
}

} // namespace qkv
