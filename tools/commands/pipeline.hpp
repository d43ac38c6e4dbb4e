// pipeline: the stage tools (embed, attend, mlp, block), one function each. A tool's main
// parses options into one of these structs and calls the function.
#pragma once
#include "commands/cli.hpp"
#include "commands/interventions.hpp"
#include "qkv/model/transformer.hpp"

#include <string>
#include <vector>

namespace qkv {

struct EmbedOptions {
    CommonOptions common;
    std::string input;
    std::vector<std::string> save; // "parts"
};
void run_embed(const EmbedOptions& opt);

struct AttendOptions {
    CommonOptions common;
    std::string input;
    int64_t layer = -1;
    std::vector<std::string> save; // scores, pattern, q, k, v, z, head_out, out
    bool no_mask = false;
    bool mask = false;   // force the causal mask on (cross-attention has none by default)
    std::string context; // cross-attention: keys and values from this file's /resid
    // interventions on heads
    std::string ablate_heads, only_heads, patch_heads, patch_from;
    std::vector<std::string> scale_heads; // "H=F"
    InterventionOptions sites;            // --patch, --ablate, --add at attention's sites
};
void run_attend(const AttendOptions& opt);
const std::vector<std::string>& attend_save_names();

struct MlpOptions {
    CommonOptions common;
    std::string input;
    int64_t layer = -1;
    std::vector<std::string> save; // pre, post
    std::string patch_from;
    InterventionOptions sites; // --patch, --ablate, --add at the MLP's sites
};
void run_mlp(const MlpOptions& opt);

struct BlockOptions {
    CommonOptions common;
    std::string input;
    std::string layers = "all";
    std::vector<std::string> save; // block_save_names(), kept per layer under /blocks/L
    std::string positions;         // --positions: the saves at these positions only
    // interventions on heads named L.H (layer.head), as attend's on one layer
    std::string ablate_heads, patch_heads, patch_from;
    std::vector<std::string> scale_heads; // "L.H=F"
    InterventionOptions sites;            // --patch, --ablate, --add at L.SITE
    // --sweep KIND: every single-site variant scored (--answer, --foil), in batches
    std::string sweep, answer, foil;
    bool stats = false; // --stats: load and forward times, peak memory on stderr
    // -f CORPUS --window N --append STORE.h5: an activation store (store_tool.hpp)
    struct {
        std::string corpus, append;
        int64_t window = 0, stride = 0;
    } store;
};
const std::vector<std::string>& block_save_names();
// What block keeps of each layer it runs, from --save's names (pre_linear: a gated MLP only).
BlockSaves block_saves(const Config& cfg, const std::vector<std::string>& save,
                       const std::string& model_path);
void run_block(const BlockOptions& opt);

} // namespace qkv
