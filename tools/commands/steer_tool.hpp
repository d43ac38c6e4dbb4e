// steer_tool: the `steer` command. Contrastive activation addition: a steering vector, the mean
// of the stream entering a layer over a set of prompts minus its mean over a contrasting set,
// at each prompt's last token (or over all its tokens), for generate --add and block --add.
#pragma once
#include "commands/cli.hpp"

#include <string>

namespace qkv {

struct SteerOptions {
    CommonOptions common;
    int64_t layer = -1;
    std::string positive, negative; // files of prompts, one a line
    bool all_positions = false;     // the mean over every token, not the last one
    bool no_bos = false;
};
void run_steer(const SteerOptions& opt);

} // namespace qkv
