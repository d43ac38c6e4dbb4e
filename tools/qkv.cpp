// qkv: the umbrella command, in the git style. `qkv TOOL ARGS` runs the tool installed beside
// it (the tools keep their own names for pipelines), `qkv help [TOOL]` lists the tools or shows
// a tool's man page, `qkv --version` says what is built in: the BLAS the CPU backend uses and
// whether the CUDA module and a device are found.
#include "commands/cli.hpp"
#include "qkv/tensor/backend.hpp"
#include "qkv/version.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

struct Tool {
    const char* name;
    const char* what;
};

// Every tool, in the order of the pipeline.
const std::vector<Tool>& tools() {
    static const std::vector<Tool> t = {
        {"tokenize", "text to tokens and back; --pad for batches of unequal length"},
        {"embed", "tokens to the residual stream"},
        {"attend", "one layer's attention (saves, interventions at its sites)"},
        {"mlp", "one layer's MLP (saves, interventions at its sites)"},
        {"block", "whole layers: capture, interventions, --sweep"},
        {"generate", "the next token from a stream, or text (steering with --add)"},
        {"score", "log-probabilities, perplexity, answers, KL"},
        {"attribute", "direct logit attribution"},
        {"steer", "a steering vector by contrastive activation addition"},
        {"inspect", "what a file holds; pictures; --diff"},
        {"model", "init, import, info and export of model files"},
        {"count-params", "parameters and FLOPs"},
        {"train", "training, with checkpoints"},
    };
    return t;
}

std::string exe_dir() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    const std::string p(buf, static_cast<size_t>(n));
    return p.substr(0, p.rfind('/'));
}

// Where the tools are: libexec/qkv/bin of an installed tree, else beside qkv (a build tree).
std::string tools_dir() {
    const std::string dir = exe_dir();
    const std::string installed = dir + "/../" QKV_TOOLS_SUBDIR;
    return access((installed + "/embed").c_str(), X_OK) == 0 ? installed : dir;
}

bool is_tool(const std::string& name) {
    const auto& t = tools();
    return std::any_of(t.begin(), t.end(), [&](const Tool& x) { return name == x.name; });
}

void list_tools(FILE* out) {
    std::fprintf(out,
                 "usage: qkv TOOL [ARGS...]    qkv help [TOOL]    qkv path    qkv --version\n\n"
                 "Takes a transformer apart: each tool is one step, reading and writing "
                 "HDF5 files\nthrough pipes (each also runs as its own command):\n\n");
    for (const Tool& t : tools())
        std::fprintf(out, "  %-13s %s\n", t.name, t.what);
    std::fprintf(out, "\nqkv help TOOL (or man TOOL) for a tool's manual; man qkv-files for the "
                      "files.\nThe tools run as qkv TOOL, qkv-TOOL, or by their own names with\n"
                      "  export PATH=\"$(qkv path):$PATH\"\n");
}

int version() {
    std::printf("qkv %s\n", QKV_VERSION);
    std::printf("cpu: %s\n", qkv::make_cpu_backend(0)->describe().c_str());
    std::printf("cuda: %s\n", qkv::cuda_device_available()
                                  ? "the CUDA module and a device are found (--device cuda)"
                                  : "not available (no CUDA module beside the tools, or no "
                                    "device)");
    std::printf("tools:");
    for (const Tool& t : tools())
        std::printf(" %s", t.name);
    std::printf("\n");
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        list_tools(stderr);
        return 2;
    }
    const std::string first = argv[1];
    if (first == "-h" || first == "--help") {
        list_tools(stdout);
        return 0;
    }
    if (first == "--version") return version();
    if (first == "path") { // the folder of the tools' short names, for PATH
        char real[4096];
        const std::string dir = tools_dir();
        std::printf("%s\n", realpath(dir.c_str(), real) ? real : dir.c_str());
        return 0;
    }
    if (first == "__complete") { // bash completion (completion/qkv.bash): WORDS after "qkv"
        if (argc <= 3 || (argc == 4 && std::string(argv[2]) == "help")) {
            for (const Tool& t : tools())
                std::printf("%s\n", t.name);
            std::printf("help\n--help\n--version\n");
            return 0;
        }
        if (!is_tool(argv[2])) return 0;
        const std::string path = tools_dir() + "/" + argv[2];
        std::vector<char*> args = {argv[2], argv[1]};
        args.insert(args.end(), argv + 3, argv + argc);
        args.push_back(nullptr);
        execv(path.c_str(), args.data());
        return 1;
    }
    if (first == "help") {
        if (argc < 3) {
            list_tools(stdout);
            return 0;
        }
        const std::string page = argv[2];
        if (!is_tool(page) && page != "qkv" && page != "qkv-files") {
            std::fprintf(stderr, "qkv: help: '%s' is not a qkv tool (see qkv --help)\n",
                         page.c_str());
            return 2;
        }
        // The man page beside an installed or built tree, else the system's.
        const std::string dir = exe_dir();
        for (const std::string& path :
             {dir + "/../share/man/man1/" + page + ".1", dir + "/../../man/" + page + ".1"})
            if (access(path.c_str(), R_OK) == 0) {
                execlp("man", "man", "-l", path.c_str(), static_cast<char*>(nullptr));
                break;
            }
        execlp("man", "man", page.c_str(), static_cast<char*>(nullptr));
        std::fprintf(stderr, "qkv: help: cannot run man (%s); try %s --help\n",
                     std::strerror(errno), page.c_str());
        return 1;
    }
    if (!is_tool(first)) {
        std::vector<std::string> names;
        for (const Tool& t : tools())
            names.push_back(t.name);
        const std::string best = qkv::closest_name(first, names);
        std::fprintf(stderr, "qkv: '%s' is not a qkv tool%s (see qkv --help)\n", first.c_str(),
                     best.empty() ? "" : ("; did you mean '" + best + "'?").c_str());
        return 2;
    }
    const std::string path = tools_dir() + "/" + first;
    std::vector<char*> args(argv + 1, argv + argc);
    args.push_back(nullptr);
    execv(path.c_str(), args.data());
    std::fprintf(stderr, "qkv: cannot run %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
}
