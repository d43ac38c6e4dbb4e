// completion: what a shell may complete, from the one declaration of each command's options
// (its CLI::App). The bash completion (completion/qkv.bash) runs `TOOL __complete WORDS...` with
// the words typed after the tool's name, the last the one being completed, and offers what comes
// back, one candidate a line: option names after '-', the subcommands of `model`, layer numbers
// after --layer/--layers (read from the --model file), devices after --device, a file's
// datasets after FILE:, and the line "__files__" where a file name goes.
#pragma once
#include <CLI/CLI.hpp>

#include <ostream>
#include <string>
#include <vector>

namespace qkv {

void complete(const CLI::App& app, const std::vector<std::string>& words, std::ostream& out);

} // namespace qkv
