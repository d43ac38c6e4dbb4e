// h5_walk: what the check of an untrusted HDF5 file does (h5_probe.hpp), in a process that may
// die of it: the qkv-h5check helper, or a forked child where the helper is not installed. It
// bounds its own time and memory, opens the file and walks all of its metadata.
#pragma once
#include <vector>

// QKV_ASAN: built with AddressSanitizer (gcc or clang).
#if defined(__SANITIZE_ADDRESS__)
#define QKV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QKV_ASAN 1
#endif
#endif

namespace qkv {

constexpr int kProbeSeconds = 10;                            // CPU time of a walk, at least
constexpr double kProbeBytesPerSecond = 1 << 20;             // and a second more per MiB
constexpr long long kProbeMemory = 2LL * 1024 * 1024 * 1024; // address space beyond the start's

// Bounds the calling process, about to walk the file at path or the image: kProbeSeconds of CPU
// time plus one per MiB of the file (SIGPROF; a library that spins uses CPU time, a loaded machine
// does not), or the seconds of QKV_HDF5_CHECK_SECONDS (0.1 to 3600) where set; four times as
// much wall time (SIGALRM) and CPU time plus one (SIGXCPU) as backstops; and its present address
// space plus kProbeMemory (not under AddressSanitizer, which reserves terabytes; the helper
// built with it bounds its resident memory instead).
void limit_walker(const char* path, const std::vector<char>* image);

// The attribute names qkv's readers look up: a corrupt attribute can make a file's attributes
// impossible to list, while a lookup by name still reaches (and trips on) another one, so the
// walk looks each of these up on every object too. tests/unit/test_h5file.cpp checks that the
// config's and the checkpoint's names are here; tests/architecture that the readers' are.
const std::vector<const char*>& walked_attribute_names();

// Opens the file at path, or the in-memory image, and walks every link and object, every
// attribute's value, every dataset's type, shape and layout, and every string dataset's strings.
// Returns normally whatever errors the library reported, and whether it reported any (only then
// can it have lost memory: the helper looks for leaks then); a failure of the library itself
// ends the process.
bool walk_hdf5(const char* path, const std::vector<char>* image);

} // namespace qkv
