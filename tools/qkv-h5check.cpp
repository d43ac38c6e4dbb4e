// qkv-h5check: the walker of an untrusted HDF5 file (libcore/qkv/files/h5_probe.hpp), started by
// the tools before they read a file, not by people. Walks FILE, or the image on stdin for "-",
// under limits of time and memory (h5_walk.hpp), and exits 0 when the walk completes, whatever
// errors the HDF5 library reported; any other end (a crash, a signal of its limits) tells the tool
// that the library failed on the file. With --copy it then writes the file's clean copy
// (h5_clean_copy.hpp) to stdout, which the tool reads instead of the file.
#include "qkv/files/h5_clean_copy.hpp"
#include "qkv/files/h5_walk.hpp"
#include "qkv/version.hpp"

#ifdef QKV_ASAN
#include <sanitizer/lsan_interface.h>
#endif

#include <cstdio>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {
const char* kUsage =
    "Usage: qkv-h5check [--copy] FILE|-\n"
    "Walks an HDF5 file's metadata (or the image on stdin) for the qkv tools, under\n"
    "limits of time and memory; exit 0 when the walk completes. With --copy, then\n"
    "writes a clean copy of the file to stdout. See qkv-h5check(1).\n";
}

// Under AddressSanitizer: a fault ends the walk at once, an absurd allocation is refused as a
// fault, resident memory is bounded (the address space cannot be: ASan reserves terabytes), and
// memory the library lost on the file counts as a failure (checked once the file is closed). Its
// report goes nowhere (stderr is /dev/null): not symbolized, which takes seconds.
extern "C" const char* __asan_default_options() {
    return "detect_leaks=1:leak_check_at_exit=0:allocator_may_return_null=0:"
           "hard_rss_limit_mb=2048:exitcode=3:handle_segv=1:print_summary=0:symbolize=0";
}

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "--help") == 0) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
        std::puts("qkv-h5check (qkv) " QKV_VERSION);
        return 0;
    }
    const bool copy = argc == 3 && std::strcmp(argv[1], "--copy") == 0;
    const char* file = argv[argc - 1];
    if (argc != 2 + copy || (file[0] == '-' && file[1] != '\0')) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    const bool image = std::strcmp(file, "-") == 0;
    std::vector<char> bytes;
    if (image) { // a memory file from the tool: its size is known
        struct stat st;
        if (fstat(STDIN_FILENO, &st) == 0 && st.st_size > 0)
            bytes.reserve(static_cast<size_t>(st.st_size));
        char buf[1 << 16];
        ssize_t n;
        while ((n = read(STDIN_FILENO, buf, sizeof buf)) > 0)
            bytes.insert(bytes.end(), buf, buf + n);
        if (n < 0) return 3;
    }
    const char* path = image ? nullptr : file;
    const std::vector<char>* memory = image ? &bytes : nullptr;
    qkv::limit_walker(path, memory);
    const bool library_failed = qkv::walk_hdf5(path, memory);
    const int status = copy ? qkv::write_clean_copy(path, memory, STDOUT_FILENO) : 0;
#ifdef QKV_ASAN
    // The library loses memory only on its error paths (an image it cannot open, for one).
    if (library_failed && __lsan_do_recoverable_leak_check() != 0) _exit(3);
#else
    (void)library_failed;
#endif
    _exit(status); // no exit handlers
}
