#include "commands/completion.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/h5file.hpp"

#include <sys/stat.h>

namespace qkv {

namespace {

// The option of cmd spelled name ("-l", "--layer"), or null.
const CLI::Option* option_named(const CLI::App& cmd, const std::string& name) {
    for (const CLI::Option* o : cmd.get_options())
        if (o->check_name(name)) return o;
    return nullptr;
}

// The value given to the first of names among words, or "".
std::string value_of(const std::vector<std::string>& words, const std::vector<std::string>& names) {
    for (size_t i = 0; i + 1 < words.size(); ++i)
        for (const std::string& n : names) {
            if (words[i] == n) return words[i + 1];
            if (words[i].rfind(n + "=", 0) == 0) return words[i].substr(n.size() + 1);
        }
    return "";
}

bool is_file(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

} // namespace

void complete(const CLI::App& app, const std::vector<std::string>& words, std::ostream& out) {
    if (words.empty()) return;
    const std::string& cur = words.back();
    // The subcommand being typed into (model init, ...).
    const CLI::App* cmd = &app;
    for (size_t i = 0; i + 1 < words.size(); ++i)
        for (const CLI::App* sub : cmd->get_subcommands({}))
            if (sub->get_name() == words[i]) cmd = sub;
    const std::string prev = words.size() >= 2 ? words[words.size() - 2] : "";
    const CLI::Option* takes = prev.rfind('-', 0) == 0 ? option_named(*cmd, prev) : nullptr;
    if (takes && takes->get_type_size() == 0) takes = nullptr; // a flag
    if (takes) {
        if (takes->check_lname("device")) {
            out << "cpu\ncuda\n";
        } else if (takes->check_lname("layer") || takes->check_lname("layers")) {
            // Layer numbers from the model file, where one is given and readable.
            const std::string model = value_of(words, {"-m", "--model"});
            if (!is_file(model)) return;
            try {
                const int64_t n = H5File::open_read(model).attr_int("/config", "n_layers");
                for (int64_t l = 0; l < n; ++l)
                    out << l << '\n';
                if (takes->check_lname("layers")) out << "all\n";
            } catch (const Error&) { // not a model: nothing to offer
            }
        } else {
            out << "__files__\n";
        }
        return;
    }
    if (cur.rfind('-', 0) == 0) {
        for (const CLI::Option* o : cmd->get_options()) {
            for (const std::string& l : o->get_lnames())
                out << "--" << l << '\n';
            for (const std::string& s : o->get_snames())
                out << '-' << s << '\n';
        }
        return;
    }
    // FILE:/DATASET, as inspect and --add take them.
    const auto colon = cur.find(':');
    if (colon != std::string::npos && is_file(cur.substr(0, colon))) {
        try {
            const std::string file = cur.substr(0, colon);
            for (const std::string& d : H5File::open_read(file).datasets("/"))
                out << file << ':' << d << '\n';
        } catch (const Error&) {
        }
        return;
    }
    if (cmd == &app && !app.get_subcommands({}).empty()) {
        for (const CLI::App* sub : app.get_subcommands({}))
            out << sub->get_name() << '\n';
        return;
    }
    out << "__files__\n";
}

} // namespace qkv
