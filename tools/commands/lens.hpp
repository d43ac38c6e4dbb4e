// lens: inspect --lens, the logit-lens grid of a run: the top-1 next token and its probability
// at every layer's stream and position, from a whole-model capture (block --save resid_pre) or
// the stage files of a pipeline.
#pragma once
#include "commands/inspect.hpp"

#include <string>

namespace qkv {

// Returns what goes to standard output (the grid as text or JSON, or the line saying where the
// picture went).
std::string run_lens(const InspectOptions& opt);

} // namespace qkv
