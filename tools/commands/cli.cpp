#include "commands/cli.hpp"

#include "commands/completion.hpp"
#include "qkv/files/h5file.hpp"
#include "qkv/tensor/backend.hpp"
#include "qkv/version.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <new>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

namespace qkv {

std::string version_text(const std::string& tool) {
    return tool + " (qkv) " + QKV_VERSION + "\nbackends: " + make_cpu_backend(0)->describe() +
           "; cuda " +
           (cuda_device_available() ? "(the module and a device are found)"
                                    : "not available (no module beside the tools, or no device)");
}

void add_common_options(CLI::App& app, CommonOptions& opt, unsigned flags) {
    const std::string tool =
        app.get_parent() ? app.get_parent()->get_name() + " " + app.get_name() : app.get_name();
    // --help ends with the examples (written after "Examples:" in the description) and the
    // manual's name.
    const std::string page = app.get_parent() ? app.get_parent()->get_name() : app.get_name();
    const std::string desc = app.get_description();
    const auto at = desc.find("\n\nExamples:");
    std::string footer = "Manual: man " + page + " (or qkv help " + page + ")";
    if (at != std::string::npos) {
        footer = desc.substr(at + 2) + "\n\n" + footer;
        app.description(desc.substr(0, at));
    }
    app.footer(footer);
    app.set_version_flag("--version",
                         std::function<std::string()>([tool] { return version_text(tool); }));
    if (flags & kModel) app.add_option("-m,--model", opt.model, "Model file (.h5)")->required();
    if (flags & kOutput)
        app.add_option("-o,--output", opt.output, "Output file; '-' or absent: stdout (a pipe)");
    if (flags & kThreads)
        app.add_option("-t,--threads", opt.threads, "Threads (default: the machine's cores)")
            ->check(CLI::Range(0, 4096));
    if (flags & kDevice)
        app.add_option("--device", opt.device, "cpu or cuda")
            ->envname("QKV_DEVICE")
            ->check(CLI::IsMember({"cpu", "cuda"}));
    if (flags & kForce)
        app.add_flag("--force", opt.force, "Run even when the input's stage is out of order");
    if (flags & kQuiet) app.add_flag("-q,--quiet", opt.quiet, "Print nothing but errors");
}

void require_input(const std::string& path) {
    if (is_stdio(path) && isatty(STDIN_FILENO)) throw ShowUsage();
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

// The command's option names, each with the name to suggest for it: itself, or for a hidden
// alias its current name (add_hidden_alias).
void add_names(const CLI::App& cmd, std::vector<std::pair<std::string, std::string>>& names) {
    for (const CLI::Option* o : cmd.get_options()) {
        std::vector<std::string> spelled;
        for (const std::string& l : o->get_lnames())
            spelled.push_back("--" + l);
        for (const std::string& s : o->get_snames())
            spelled.push_back("-" + s);
        for (const std::string& n : spelled)
            names.emplace_back(n, o->get_group().empty() ? o->get_description() : n);
    }
}

// The first argument that looks like an option but is none of the command's (or its chosen
// subcommand's), with the closest name; "" when all are known. Run before CLI11's parse, which
// reports a missing required option before an unknown one.
std::string unknown_option(const CLI::App& app, int argc, char** argv, std::string& hint) {
    const CLI::App* cmd = &app;
    std::vector<std::pair<std::string, std::string>> names;
    add_names(app, names);
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--") break;
        const CLI::App* sub = nullptr;
        for (const CLI::App* s : cmd->get_subcommands({}))
            if (s->get_name() == a) sub = s;
        if (sub) {
            cmd = sub;
            add_names(*sub, names);
            continue;
        }
        const bool long_opt = a.size() > 2 && a.compare(0, 2, "--") == 0;
        const bool short_opt = a.size() >= 2 && a[0] == '-' && std::isalpha(a[1]);
        if (!long_opt && !short_opt) continue;
        const std::string name = long_opt ? a.substr(0, a.find('=')) : a.substr(0, 2);
        std::vector<std::string> spelled;
        for (const auto& [n, suggest] : names)
            spelled.push_back(n);
        if (std::find(spelled.begin(), spelled.end(), name) != spelled.end()) continue;
        hint = closest_name(name, spelled);
        for (const auto& [n, suggest] : names)
            if (n == hint) hint = suggest;
        return name;
    }
    return "";
}

} // namespace

std::string closest_name(const std::string& given, const std::vector<std::string>& candidates) {
    std::string best;
    size_t best_d = 3; // at most 2 edits
    for (const std::string& c : candidates) {
        const size_t d = c.rfind(given, 0) == 0 ? 1 : edit_distance(given, c);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    return best;
}

int run_tool(CLI::App& app, int argc, char** argv, CommonOptions& opt,
             const std::function<void()>& body) {
    const std::string name = app.get_name();
    if (argc >= 2 && std::string(argv[1]) == "__complete") { // the shell's completion asks
        complete(app, std::vector<std::string>(argv + 2, argv + argc), std::cout);
        return 0;
    }
    std::string hint;
    const std::string unknown = unknown_option(app, argc, argv, hint);
    if (!unknown.empty()) {
        std::cerr << name << ": unknown option '" << unknown << "'"
                  << (hint.empty() ? "" : "; did you mean '" + hint + "'?") << " (see " << name
                  << " --help)\n";
        return 2;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) { // --help, --version
        return app.exit(e);
    } catch (const CLI::ExtrasError&) { // CLI11 lists them last first: in the order given
        std::string extras;
        const std::vector<std::string> rest = app.remaining(true);
        for (const std::string& a : rest)
            extras += (extras.empty() ? "'" : ", '") + a + "'";
        std::cerr << name << ": unexpected argument" << (rest.size() > 1 ? "s " : " ") << extras
                  << " (see " << name << " --help)\n";
        return 2;
    } catch (const CLI::ParseError& e) {
        std::cerr << name << ": " << e.what() << " (see " << name << " --help)\n";
        return 2;
    }
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        const bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`*?") == std::string::npos;
        if (!plain) {
            std::string q = "'";
            for (char c : a)
                q += c == '\'' ? std::string("'\\''") : std::string(1, c);
            a = q + "'";
        }
        opt.command_line += (i ? " " : "") + a;
    }
    try {
        body();
        return opt.exit_status;
    } catch (const ShowUsage&) {
        std::cerr << app.help();
        return 2;
    } catch (const Error& e) {
        std::cerr << name << ": " << e.what() << '\n';
        return e.exit_code();
    } catch (const std::bad_alloc&) {
        std::cerr << name << ": out of memory\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << name << ": " << e.what() << '\n';
        return 1;
    }
}

bool parse_int64(const std::string& text, int64_t& value) {
    if (text.empty()) return false;
    size_t used = 0;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        return false;
    }
    return used == text.size();
}

namespace {
int64_t parse_int(const std::string& s, const std::string& option, const std::string& text) {
    int64_t v = 0;
    if (!parse_int64(s, v)) throw UsageError(option + ": '" + text + "' is not a layer range");
    return v;
}
} // namespace

LayerRange parse_layer_range(const std::string& text, int64_t n_layers, const std::string& option,
                             bool allow_empty) {
    LayerRange r;
    if (text == "all") return {0, n_layers};
    const auto colon = text.find(':');
    if (colon == std::string::npos) {
        r.start = parse_int(text, option, text);
        if (r.start < 0) r.start += n_layers; // one index, -1 the last
        r.stop = r.start + 1;
    } else {
        const std::string a = text.substr(0, colon), b = text.substr(colon + 1);
        r.start = a.empty() ? 0 : parse_int(a, option, text);
        r.stop = b.empty() ? n_layers : parse_int(b, option, text);
    }
    if (r.start < 0) r.start += n_layers; // Python-style negative indices
    if (r.stop < 0) r.stop += n_layers;
    if (r.start < 0 || r.stop > n_layers || r.start > r.stop || (!allow_empty && r.start == r.stop))
        throw UsageError(option + ": '" + text + "' is not a " + (allow_empty ? "" : "non-empty ") +
                         "range within 0:" + std::to_string(n_layers));
    return r;
}

std::vector<int64_t> parse_index_list(const std::string& text, int64_t n,
                                      const std::string& option) {
    std::vector<int64_t> out;
    size_t begin = 0;
    while (begin <= text.size()) {
        const size_t comma = std::min(text.find(',', begin), text.size());
        const LayerRange r = parse_layer_range(text.substr(begin, comma - begin), n, option);
        for (int64_t i = r.start; i < r.stop; ++i)
            if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
        begin = comma + 1;
    }
    return out;
}

std::function<void(int64_t, int64_t)> terminal_progress(const std::string& what, bool quiet) {
    if (quiet || !isatty(STDERR_FILENO)) return {};
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    Clock::time_point last = start;
    bool shown = false;
    return [=](int64_t done, int64_t total) mutable {
        const Clock::time_point now = Clock::now();
        const bool end = done >= total;
        if (end ? !shown
                : now - start < std::chrono::seconds(1) ||
                      now - last < std::chrono::milliseconds(100))
            return;
        last = now;
        shown = true;
        std::cerr << '\r' << what << ": " << (total > 0 ? 100 * done / total : 100)
                  << "% of the weights written" << (end ? "\n" : "") << std::flush;
    };
}

double peak_memory_mib() {
    // VmHWM is this program's own peak; getrusage's ru_maxrss also counts the size of the
    // process that started it at the moment it did (Linux carries it across exec), so a tool
    // run from a large process would report that process's size.
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0; // kB
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; // kilobytes on Linux
}

int thread_count(const CommonOptions& opt) {
    const int n =
        opt.threads > 0 ? opt.threads : static_cast<int>(std::thread::hardware_concurrency());
    return std::max(1, n);
}

std::string history_line(const CommonOptions& opt, const std::string& backend) {
    char when[32];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(when) + " qkv " + QKV_VERSION + " " + backend + ": " + opt.command_line;
}

} // namespace qkv
