// h5_clean_copy: what the check of an untrusted HDF5 file (h5_probe.hpp) hands back to the tool,
// so that the tool's process never decodes the file's own metadata. In the checking process,
// after the walk (h5_walk.hpp), the file's groups, datasets and attributes are written into a new
// in-memory HDF5 file by the library's own writer, whose bytes go back to the tool; the tool
// reads those. A failure of the library on the forged structures (a global-heap object read past
// its end, a recycled block read stale) can then only happen where the walk and the copy run.
// Large contiguous datasets of a file on disk are not copied: the copy describes them as external
// storage in the original file at their offset (their bytes are plain numbers, read by offset).
#pragma once
#include <cstdint>
#include <vector>

namespace qkv {

// Past this many bytes of data to copy (chunked or compressed datasets of a file larger than
// this), or of an in-memory image (a model through a pipe), no copy is made: the file is read in
// place after the check.
constexpr uint64_t kMaxCleanCopyBytes = uint64_t(256) << 20;
// Contiguous datasets of a file on disk from this size on are referred to, not copied.
constexpr uint64_t kExternalFromBytes = uint64_t(64) << 10;

enum class CleanCopyResult {
    Copied,   // image holds the copy
    Unopened, // the library could not open the file (it reported an error)
    TooLarge, // more than kMaxCleanCopyBytes of data would have to be copied
    Damaged,  // out holds the path of the first object the library could not read
};

// The clean copy of the file at path (absolute: the copy's external datasets name it), or of
// the in-memory image (one of the two). A file with an object the library lists but
// cannot read is refused as a whole (Damaged). Links other than hard links, named datatypes,
// virtual datasets, datasets stored in other files, and attributes other than numbers and
// strings are left out (qkv writes none; some would make the tool open other files).
CleanCopyResult clean_copy(const char* path, const std::vector<char>* image,
                           std::vector<char>& out);

// The exit statuses of a check that copies (qkv-h5check --copy, or a forked child).
constexpr int kCheckCopied = 0;   // the copy is on its output
constexpr int kCheckUnopened = 4; // nothing written
constexpr int kCheckTooLarge = 5; // nothing written: the file is read in place
constexpr int kCheckDamaged = 6;  // the path of the object the library could not read

// The clean copy of the file (made absolute) or image, written to fd; returns a status above.
int write_clean_copy(const char* path, const std::vector<char>* image, int fd);

} // namespace qkv
