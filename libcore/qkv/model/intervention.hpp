// intervention: changing an activation where the model computes it, at a named site of a layer
// (TransformerLens' hook points, as data): replace some positions and units (heads, key/value
// heads or neurons) of the site with values from another run (patching, resample ablation), a
// mean (mean ablation) or zeros, or add a vector to them (steering). The layers apply the edits
// of their sites as they compute them (model/attention.cpp, model/mlp.cpp); what they save is
// the edited value.
#pragma once
#include "qkv/tensor/backend.hpp"

#include <string>
#include <vector>

namespace qkv {

// Sites, in the order a layer computes them. Each is [batch, pos, unit, width] with unit x width:
//   resid_pre   the stream entering the layer (attention's input)   [1, d_model]
//   q           queries after rotary                                 [head, d_head]
//   k, v        keys after rotary, values                            [kv_head, d_head]
//   pattern     the softmax over keys, per query                     [head, key_pos]
//   z           the pattern-weighted values                          [head, d_head]
//   head_out    each head's change to the stream                     [head, d_model]
//   attn_out    attention's change (all heads and b_O)               [1, d_model]
//   resid_mid   the stream entering the MLP                          [1, d_model]
//   mlp_pre     the MLP's pre-activation (gated: the gate's)         [d_mlp, 1]
//   mlp_post    after the activation (gated: silu(gate) * in)        [d_mlp, 1]
//   mlp_out     the MLP's change to the stream                       [1, d_model]
enum class Site {
    ResidPre,
    Q,
    K,
    V,
    Pattern,
    Z,
    HeadOut,
    AttnOut,
    ResidMid,
    MlpPre,
    MlpPost,
    MlpOut
};
const char* site_name(Site s);
bool parse_site(const std::string& name, Site& site); // false: no such site

// One edit. source holds values [batch or 1, pos or 1, unit or 1, width] on the backend's device
// (a dimension of 1 is broadcast: a mean, or one steering vector for every position or unit);
// the chosen positions and units of the site become the source's (replace) or get it added.
struct SiteEdit {
    Site site = Site::ResidPre;
    std::vector<int64_t> positions; // empty: every position
    std::vector<int64_t> units;     // empty: every unit
    std::vector<int64_t> batches;   // the sequences it changes; empty: every one
    bool add = false;
    Tensor source; // rank 4, see above
};
using SiteEdits = std::vector<SiteEdit>;

// Where a site's values are: x[b, p, u, i] at data + b * batch + p * pos + u * unit + i.
struct SiteLayout {
    int64_t batch, pos, unit; // strides, in floats
};

// Applies the edits of `site` among edits to x (B sequences, T positions, U units of width W),
// which holds the sequences first_batch.. of the sources.
void apply_site_edits(Backend& be, const SiteEdits& edits, Site site, float* x,
                      const SiteLayout& layout, int64_t B, int64_t T, int64_t U, int64_t W,
                      int64_t first_batch = 0);

// The edits of a stream site (resid_pre, resid_mid, attn_out, mlp_out) on x [batch, pos, d_model].
void apply_stream_edits(Backend& be, const SiteEdits& edits, Site site, Tensor& x);

// Whether edits change `site` (so that a layer can skip work for sites nobody edits).
bool edits_site(const SiteEdits* edits, Site site);

} // namespace qkv
