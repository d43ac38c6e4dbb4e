// h5_walk: what the check of an untrusted HDF5 file does (h5_probe.hpp), in a process that may
// die of it: the qkv-h5check helper, or a forked child where the helper is not installed. It
// bounds its own time and memory, opens the file and walks all of its metadata.
#pragma once
#include <vector>

namespace qkv {

constexpr int kProbeSeconds = 10;                            // CPU and wall time of a walk
constexpr long long kProbeMemory = 2LL * 1024 * 1024 * 1024; // address space beyond the start's

// Bounds the calling process: kProbeSeconds of CPU and wall time (SIGALRM, SIGXCPU), and its
// present address space plus kProbeMemory (not under AddressSanitizer, which reserves terabytes).
void limit_walker();

// Opens the file at path, or the in-memory image, and walks every link and object, every
// attribute's value, every dataset's type, shape and layout, and every string dataset's strings.
// Returns normally whatever errors the library reported; a failure of the library itself ends
// the process.
void walk_hdf5(const char* path, const std::vector<char>* image);

} // namespace qkv
