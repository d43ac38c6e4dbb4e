#include "qkv/files/h5_probe.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/h5_clean_copy.hpp"
#include "qkv/files/h5_walk.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace qkv {

namespace {

bool g_probe = true;
// Files on disk read in place that passed a probe earlier (not written by this process).
int g_untrusted_in_place = 0;

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

// The files known in this process: true for those it wrote.
std::map<std::string, bool>& known_here() {
    static std::map<std::string, bool> lines;
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

enum class Known { No, Written, Checked };

Known known_readable(const std::string& path) {
    FileKey key;
    if (!file_key(path, key)) return Known::No;
    const std::string line = key.line();
    const auto it = known_here().find(line);
    if (it != known_here().end()) return it->second ? Known::Written : Known::Checked;
    return known_in_cache(line) ? Known::Checked : Known::No;
}

void remember_readable(const std::string& path, bool written) {
    FileKey key;
    if (!file_key(path, key)) return;
    const std::string line = key.line();
    if (known_here().emplace(line, written).second && !written) add_to_cache(line);
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

// Starts the helper on the file or image (given on its stdin through a memory file), its clean
// copy to be written to out: the tool pays for a vfork and an exec, not for copying its own
// address space.
pid_t spawn_helper(const std::string& helper, const char* path, const std::vector<char>* image,
                   int out) {
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
    posix_spawn_file_actions_adddup2(&fa, out, STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    // A path that starts with '-' goes as ./-name: the helper takes '-' for stdin.
    const std::string arg = !path ? "-" : path[0] == '-' ? std::string("./") + path : path;
    char copy[] = "--copy";
    char* argv[] = {const_cast<char*>(helper.c_str()), copy, const_cast<char*>(arg.c_str()),
                    nullptr};
    pid_t pid = -1;
    if (posix_spawn(&pid, helper.c_str(), &fa, nullptr, argv, environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    if (in >= 0) ::close(in);
    return pid;
}

// Where the helper is missing: a forked child walks the file and writes its copy to out.
pid_t fork_walker(const char* path, const std::vector<char>* image, int out) {
    const pid_t pid = fork();
    if (pid != 0) return pid;
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) { // nothing of the child's reaches the user's terminal
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
    }
    limit_walker(path, image);
    walk_hdf5(path, image);
    // no exit handlers: the parent's files are its own
    _exit(write_clean_copy(path, image, out));
}

// The bytes the child wrote to the memory file fd.
std::vector<char> read_back(int fd) {
    struct stat st;
    std::vector<char> bytes;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) return bytes;
    bytes.resize(static_cast<size_t>(st.st_size));
    size_t off = 0;
    while (off < bytes.size()) {
        const ssize_t r =
            pread(fd, bytes.data() + off, bytes.size() - off, static_cast<off_t>(off));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        off += static_cast<size_t>(r);
    }
    bytes.resize(off);
    return bytes;
}

} // namespace

Probe Probe::start(const std::string& name, const char* path, const std::vector<char>* image) {
    Probe p;
    if (!g_probe) return p;
    p.name_ = name;
    p.path_ = path ? path : "";
    const Known known = path ? known_readable(path) : Known::No;
    p.checked_before_ = known == Known::Checked;
    if (known == Known::No) p.spawn(path, image);
    return p;
}

void Probe::spawn(const char* path, const std::vector<char>* image) {
    out_ = memfd_create("qkv-hdf5-copy", MFD_CLOEXEC);
    if (out_ < 0)
        throw IoError(name_ + ": cannot start the reader's check: " + std::strerror(errno));
    // The helper is built with AddressSanitizer, which cannot start under a limit on the
    // address space (ulimit -v): there, a forked child walks the file.
    rlimit as{};
    const bool as_limited = getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY;
    const std::string& helper = helper_path();
    pid_ = helper.empty() || as_limited ? -1 : spawn_helper(helper, path, image, out_);
    if (pid_ < 0) pid_ = fork_walker(path, image, out_);
    if (pid_ < 0)
        throw IoError(name_ + ": cannot start the reader's check: " + std::strerror(errno));
}

Probe& Probe::operator=(Probe&& o) noexcept {
    if (this != &o) {
        if (pid_ > 0) waitpid(pid_, nullptr, 0);
        if (out_ >= 0) ::close(out_);
        name_ = std::move(o.name_);
        path_ = std::move(o.path_);
        pid_ = o.pid_;
        out_ = o.out_;
        checked_before_ = o.checked_before_;
        o.pid_ = o.out_ = -1;
    }
    return *this;
}

Probe::~Probe() {
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    if (out_ >= 0) ::close(out_);
}

ProbeVerdict Probe::finish() {
    ProbeVerdict verdict;
    if (pid_ <= 0 && checked_before_) {
        checked_before_ = false;
        // The first such file of this process is read in place, as the probe read it: by a
        // library that has read nothing untrusted before. A later one is probed and copied.
        if (g_untrusted_in_place == 0) {
            ++g_untrusted_in_place;
            return verdict;
        }
        spawn(path_.c_str(), nullptr);
    }
    if (pid_ <= 0) return verdict;
    int status = 0;
    const int pid = pid_;
    pid_ = -1;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            throw IoError(name_ + ": the reader's check was lost: " + std::strerror(errno));
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == kCheckUnopened)
        throw FormatError(name_ + ": cannot open as HDF5 (truncated or damaged file?)");
    if (code == kCheckDamaged) { // the object's path, from the file: printable, one line
        std::string where;
        for (const char ch : read_back(out_)) {
            if (where.size() > 200) break;
            const auto u = static_cast<unsigned char>(ch);
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", u);
            where += u < 0x20 || u == 0x7f ? std::string(hex) : std::string(1, ch);
        }
        throw FormatError(name_ + ":" + where + ": damaged (the HDF5 library cannot read it)");
    }
    if (code != kCheckCopied && code != kCheckTooLarge)
        throw FormatError(name_ + ": not a readable qkv file (the HDF5 library failed while "
                                  "reading its metadata)");
    if (!path_.empty()) remember_readable(path_, false);
    if (code == kCheckTooLarge) {
        ++g_untrusted_in_place;
        return verdict;
    }
    verdict.copy = read_back(out_);
    ::close(out_);
    out_ = -1;
    if (verdict.copy.empty()) throw IoError(name_ + ": the reader's check gave back nothing");
    verdict.in_place = false;
    return verdict;
}

ProbeVerdict probe_hdf5(const std::string& name, const char* path, const std::vector<char>* image) {
    return Probe::start(name, path, image).finish();
}

void remember_written(const std::string& path) {
    remember_readable(path, true);
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
