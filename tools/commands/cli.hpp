// cli: what every tool shares. Options registered by one helper (as samtools does), the run
// wrapper that maps errors to exit codes (0 success, 1 runtime error, 2 usage error), and
// parsers for structured option values.
#pragma once
#include "qkv/base/errors.hpp"

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace qkv {

struct CommonOptions {
    std::string model;          // --model
    std::string output = "-";   // -o, stdout when absent or "-"
    int threads = 0;            // --threads, 0 = the machine's cores
    std::string device = "cpu"; // --device (or QKV_DEVICE)
    bool force = false;         // --force: skip the stage-order check
    bool quiet = false;         // --quiet: nothing on stderr but errors
    std::string command_line;   // for the history attribute
    int exit_status = 0;        // what run_tool returns when the body ends normally (inspect
                                // --diff: 1 when the files differ)
};

enum CommonFlag : unsigned {
    kModel = 1u,
    kOutput = 2u,
    kThreads = 4u,
    kDevice = 8u,
    kForce = 16u,
    kQuiet = 32u,
    kCompute = kModel | kOutput | kThreads | kDevice | kForce | kQuiet,
};

// Registers the shared options named by flags on app (--version and --help included).
void add_common_options(CLI::App& app, CommonOptions& opt, unsigned flags);

// An old spelling of an option, accepted but not listed in --help (nor suggested: its current
// name is).
template <typename T>
void add_hidden_alias(CLI::App& app, const std::string& name, T& value,
                      const std::string& current) {
    app.add_option(name, value, current)->group("");
}

// The name among candidates closest to given (edit distance at most 2, or one that begins with
// it), or "" when none is.
std::string closest_name(const std::string& given, const std::vector<std::string>& candidates);

// Thrown when a tool would wait on a terminal for input: the usage is printed, exit 2.
class ShowUsage : public UsageError {
  public:
    ShowUsage() : UsageError("no input given") {}
};
// An input path of "" or "-" with stdin a terminal is refused with ShowUsage.
void require_input(const std::string& path);

// A progress line on standard error for a long write (model init, import, export): shown only
// on a terminal, without --quiet, once the work has taken a second; the percentage of the
// weights written, redrawn at most ten times a second, ended by a newline. Empty otherwise.
std::function<void(int64_t done, int64_t total)> terminal_progress(const std::string& what,
                                                                   bool quiet);

// The threads our own loops run on: --threads, or the machine's cores (at least 1).
int thread_count(const CommonOptions& opt);

// This program's peak resident memory so far, MiB (for --stats).
double peak_memory_mib();

// Parses argv, runs body, and maps every error to one line on stderr and an exit code.
int run_tool(CLI::App& app, int argc, char** argv, CommonOptions& opt,
             const std::function<void()>& body);

// What --version prints: "TOOL (qkv) X.Y.Z" and the backends (the CPU's BLAS; whether the
// CUDA module and a device are found).
std::string version_text(const std::string& tool);

// A whole decimal integer (optional sign); false when text is anything else.
bool parse_int64(const std::string& text, int64_t& value);

// "START:STOP" (half-open, Python style, either end may be omitted), "L" or "all".
struct LayerRange {
    int64_t start = 0, stop = 0;
};
// With allow_empty, START:START (for instance "6:" of 6 layers) is an empty range.
LayerRange parse_layer_range(const std::string& text, int64_t n_layers, const std::string& option,
                             bool allow_empty = false);

// Indices into n things (positions): a comma-separated list of "I" and "START:STOP" as above,
// negative from the end ("0,5:8,-1"), in the order given, each once.
std::vector<int64_t> parse_index_list(const std::string& text, int64_t n,
                                      const std::string& option);

// One line for the history attribute: time, qkv version, backend, command line.
std::string history_line(const CommonOptions& opt, const std::string& backend);

} // namespace qkv
