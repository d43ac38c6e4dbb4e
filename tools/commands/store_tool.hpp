// store_tool: block -f CORPUS --window N [--stride S] --save SITES [--layers A:B]
// [--positions P] --append STORE.h5: a whole text run in windows of N tokens, the chosen sites
// of layers A..B-1 appended to an activation store (files/activation_store.hpp), a batch of
// windows at a time; a store that a killed run left continues where it stopped.
#pragma once
#include "commands/pipeline.hpp"

namespace qkv {

void run_block_store(const BlockOptions& opt);

} // namespace qkv
