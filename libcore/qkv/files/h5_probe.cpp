#include "qkv/files/h5_probe.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/h5_walk.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace qkv {

namespace {

bool g_probe = true;

// Files known to be readable: written by qkv, or passed by a probe. A file is known by its
// device, inode, size, modification and change time (the change time cannot be set back: a file
// changed in any way since is probed again). Kept in this process and, where the user's cache
// folder is writable, in $XDG_CACHE_HOME/qkv/hdf5-checked (~/.cache/...), one line per file,
// so that the model a pipeline's every stage reads is probed once.
struct FileKey {
    unsigned long long dev = 0, ino = 0, size = 0, mtime = 0, ctime = 0;
    std::string line() const {
        return std::to_string(dev) + ' ' + std::to_string(ino) + ' ' + std::to_string(size) + ' ' +
               std::to_string(mtime) + ' ' + std::to_string(ctime) + '\n';
    }
};

bool file_key(const std::string& path, FileKey& key) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    auto ns = [](const timespec& t) {
        return static_cast<unsigned long long>(t.tv_sec) * 1000000000ULL +
               static_cast<unsigned long long>(t.tv_nsec);
    };
    key = {static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino),
           static_cast<unsigned long long>(st.st_size), ns(st.st_mtim), ns(st.st_ctim)};
    return true;
}

std::set<std::string>& known_here() {
    static std::set<std::string> lines;
    return lines;
}

std::string cache_path() {
    const std::string dir = qkv_cache_dir();
    return dir.empty() ? dir : dir + "/hdf5-checked";
}

// Past this size the cache starts again (about 300 files), so that a lookup stays cheap.
constexpr off_t kCacheMax = 1 << 14;

bool known_in_cache(const std::string& line) {
    const std::string path = cache_path();
    if (path.empty()) return false;
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return false;
    char buf[256];
    bool found = false;
    while (!found && std::fgets(buf, sizeof buf, f))
        found = line == buf;
    std::fclose(f);
    return found;
}

// Only files that a probe passed are remembered across processes (not every output written).
void add_to_cache(const std::string& line) {
    const std::string path = cache_path();
    if (path.empty()) return;
    const std::string dir = path.substr(0, path.rfind('/'));
    mkdir(dir.substr(0, dir.rfind('/')).c_str(), 0700);
    mkdir(dir.c_str(), 0700);
    struct stat st;
    const bool full = stat(path.c_str(), &st) == 0 && st.st_size > kCacheMax;
    // One short write with O_APPEND: lines of concurrent stages do not interleave.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | (full ? O_TRUNC : 0), 0600);
    if (fd < 0) return;
    if (::write(fd, line.data(), line.size()) < 0) { // a cache that cannot grow is only slower
    }
    ::close(fd);
}

bool known_readable(const std::string& path) {
    FileKey key;
    if (!file_key(path, key)) return false;
    const std::string line = key.line();
    return known_here().count(line) > 0 || known_in_cache(line);
}

void remember_readable(const std::string& path, bool across_processes) {
    FileKey key;
    if (!file_key(path, key)) return;
    const std::string line = key.line();
    if (known_here().insert(line).second && across_processes) add_to_cache(line);
}

// The helper that walks a file in a process of its own: beside the running tool (the build tree,
// or a tree installed together), else where it is installed; "" when neither has it.
const std::string& helper_path() {
    static const std::string path = [] {
        char exe[4096];
        const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            std::string dir(exe, static_cast<size_t>(n));
            dir = dir.substr(0, dir.rfind('/'));
            // beside, installed (libexec/qkv/bin/..), the build tree (tools)
            for (const std::string& p :
                 {dir + "/qkv-h5check", dir + "/../qkv-h5check", dir + "/../tools/qkv-h5check"})
                if (access(p.c_str(), X_OK) == 0) return p;
        }
        const std::string installed = QKV_LIBEXEC_DIR "/qkv-h5check";
        return access(installed.c_str(), X_OK) == 0 ? installed : std::string();
    }();
    return path;
}

// Starts the helper on the file or image (given on its stdin through a memory file): the tool
// pays for a vfork and an exec, not for copying its own address space.
pid_t spawn_helper(const std::string& helper, const char* path, const std::vector<char>* image) {
    int in = -1;
    if (image) {
        in = memfd_create("qkv-hdf5-image", MFD_CLOEXEC);
        if (in < 0) return -1;
        size_t off = 0;
        while (off < image->size()) {
            const ssize_t w = ::write(in, image->data() + off, image->size() - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                ::close(in);
                return -1;
            }
            off += static_cast<size_t>(w);
        }
        lseek(in, 0, SEEK_SET);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in >= 0)
        posix_spawn_file_actions_adddup2(&fa, in, STDIN_FILENO);
    else
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    // A path that starts with '-' goes as ./-name: the helper takes '-' for stdin.
    const std::string arg = !path ? "-" : path[0] == '-' ? std::string("./") + path : path;
    char* argv[] = {const_cast<char*>(helper.c_str()), const_cast<char*>(arg.c_str()), nullptr};
    pid_t pid = -1;
    if (posix_spawn(&pid, helper.c_str(), &fa, nullptr, argv, environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    if (in >= 0) ::close(in);
    return pid;
}

// Where the helper is missing: a forked child walks the file.
pid_t fork_walker(const char* path, const std::vector<char>* image) {
    const pid_t pid = fork();
    if (pid != 0) return pid;
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) { // nothing of the child's reaches the user's terminal
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
    }
    limit_walker(path, image);
    walk_hdf5(path, image);
    _exit(0); // no exit handlers: the parent's open files are the parent's
}

} // namespace

Probe Probe::start(const std::string& name, const char* path, const std::vector<char>* image) {
    Probe p;
    if (!g_probe || (path && known_readable(path))) return p;
    p.name_ = name;
    p.path_ = path ? path : "";
    // The helper is built with AddressSanitizer, which cannot start under a limit on the
    // address space (ulimit -v): there, a forked child walks the file.
    rlimit as{};
    const bool as_limited = getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY;
    const std::string& helper = helper_path();
    p.pid_ = helper.empty() || as_limited ? -1 : spawn_helper(helper, path, image);
    if (p.pid_ < 0) p.pid_ = fork_walker(path, image);
    if (p.pid_ < 0)
        throw IoError(name + ": cannot start the reader's check: " + std::strerror(errno));
    return p;
}

Probe& Probe::operator=(Probe&& o) noexcept {
    if (this != &o) {
        if (pid_ > 0) waitpid(pid_, nullptr, 0);
        name_ = std::move(o.name_);
        path_ = std::move(o.path_);
        pid_ = o.pid_;
        o.pid_ = -1;
    }
    return *this;
}

Probe::~Probe() {
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

void Probe::finish() {
    if (pid_ <= 0) return;
    int status = 0;
    const int pid = pid_;
    pid_ = -1;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            throw IoError(name_ + ": the reader's check was lost: " + std::strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw FormatError(name_ + ": not a readable qkv file (the HDF5 library failed while "
                                  "reading its metadata)");
    if (!path_.empty()) remember_readable(path_, true);
}

void probe_hdf5(const std::string& name, const char* path, const std::vector<char>* image) {
    Probe::start(name, path, image).finish();
}

void remember_written(const std::string& path) {
    remember_readable(path, false);
}

std::string qkv_cache_dir() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    if (xdg && *xdg) return std::string(xdg) + "/qkv";
    if (home && *home) return std::string(home) + "/.cache/qkv";
    return "";
}

void set_hdf5_probe(bool on) {
    g_probe = on;
}

} // namespace qkv
