// sweep_tool: block --sweep, every single-site variant of an intervention on the layers of a
// range, each scored by the answer's logit difference from a foil (or its log-probability) at
// the last position, in batches (model/sweep.hpp): a [layer, head], [layer, neuron] or
// [layer, position] grid.
#pragma once
#include "commands/pipeline.hpp"
#include "qkv/files/activations.hpp"
#include "qkv/files/model_file.hpp"

namespace qkv {

const std::vector<std::string>& sweep_kinds();

// in: one sequence's stream entering layer first; the layers [first, stop) are swept.
void run_block_sweep(const BlockOptions& opt, const ModelFile& model, const Activations& in,
                     Backend& be, int64_t first, int64_t stop);

} // namespace qkv
