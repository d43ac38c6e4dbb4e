// inspect: what an activation or model file holds, values of a slice, attention patterns and
// 2-D slices as pictures (PNG, SVG or the terminal), and the difference between two files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct InspectOptions {
    std::string target; // FILE.h5, or FILE.h5:/DATASET
    std::string slice;  // numpy-like: "0,:,3", "0,1:5,:"
    bool json = false;
    bool pattern = false;    // draw /attn/pattern
    std::string heads = "0"; // "H", "0,2,5" or "all"
    int64_t batch = 0;
    std::string png;               // write a picture here
    std::string svg;               // or an SVG picture
    std::string html;              // or, for --pattern, a page for a browser
    bool term = false;             // draw in the terminal
    int width = 0;                 // terminal width (0: the terminal's, else $COLUMNS, else 80)
    bool color = true;             // false: the plain fallback (--color, NO_COLOR)
    std::string diff;              // compare target with this file
    double tolerance = 0;          // --diff: values further apart than this differ
    bool loss = false;             // the training log: a table, or the curves with --png
    bool text = false;             // the text, each token coloured by FILE:/DATASET [batch, pos]
    bool lens = false;             // the logit-lens grid of target and more (with model)
    std::string model;             // -m, for --lens
    std::vector<std::string> more; // --lens: further stage files of the same run
};

// Runs the command; returns what goes to standard output. With --diff, differ (where given) is
// set when the files differ: a dataset only in one, another shape, strings not equal, or
// values further apart than the tolerance.
std::string run_inspect(const InspectOptions& opt, bool* differ = nullptr);

// One axis of a numpy-like slice: an index, or start:stop (step 1).
struct SliceAxis {
    bool range = false;
    int64_t start = 0, stop = 0; // resolved against the axis length
};
std::vector<SliceAxis> parse_slice(const std::string& text, const std::vector<int64_t>& shape);
std::vector<int64_t> parse_head_list(const std::string& text, int64_t n_heads,
                                     const std::string& option);

} // namespace qkv
