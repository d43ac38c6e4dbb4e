// interventions: the options that change a run at a named site (model/intervention.hpp),
// declared once for attend, mlp and block, and turned into each layer's edits:
//   --patch SPEC --patch-from FILE     the site's values from another run of the same model
//   --ablate SPEC=zero|mean:FILE|resample:FILE
//   --add SPEC=FILE[:/DATASET] --scale A   a steering vector added
// SPEC is SITE[@POSITIONS][#UNITS] (block: L.SITE...): POSITIONS and UNITS (heads, key/value
// heads or neurons) lists as --positions takes them (0,4:6,-1); absent, all of them.
#pragma once
#include "commands/cli.hpp"
#include "qkv/files/activations.hpp"
#include "qkv/files/model_file.hpp"
#include "qkv/model/intervention.hpp"

#include <map>
#include <string>
#include <vector>

namespace qkv {

struct InterventionOptions {
    std::vector<std::string> patch, ablate, add;
    float scale = 1.0f;
};

// Registers --patch (unless patch is false), --ablate, --add and --scale (the tool declares
// --patch-from itself, which it shares with --patch-heads). per_layer: L.SITE names (block,
// generate).
void add_intervention_options(CLI::App& app, InterventionOptions& opt, bool per_layer,
                              bool patch = true);

// Which sites a stage computes: attend (resid_pre .. attn_out), mlp (resid_mid .. mlp_out), or
// both (block).
enum class SiteOwner { Attend, Mlp, Block };

struct Interventions {
    std::map<int64_t, SiteEdits> layers; // layer -> its edits, sources on the device
    std::vector<std::string> done;       // what was done, for the file's `modified`
    bool empty() const { return layers.empty(); }
};

// The edits the options ask for on the input `in`, for layers [first, stop) (attend and mlp:
// their one layer); patch_from is the source of --patch. in null: generation, where every step
// brings new positions, so only what holds at any position is possible (--add of one vector,
// --ablate zero or mean, no positions, no pattern). Usage errors name the option; a source of
// another model or shape is an error naming its file and dataset.
Interventions read_interventions(const InterventionOptions& opt, const std::string& patch_from,
                                 SiteOwner owner, int64_t first, int64_t stop,
                                 const ModelFile& model, const std::string& model_path,
                                 const Activations* in, Backend& be);

// A site's values at a layer in a run's file, [batch, pos, unit, width] on the host: a
// capture's /blocks/L/..., a stage's own saves of layer L, or for the stream entering a stage,
// the run's /resid at the stage before; where gets the file and dataset read.
Tensor site_values(const Activations& run, Site site, int64_t layer, const Config& cfg,
                   std::string& where);

} // namespace qkv
