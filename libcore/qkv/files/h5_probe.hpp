// h5_probe: an HDF5 input read first where a failure of the HDF5 library cannot take qkv down.
// HDF5 1.10 itself crashes, spins forever or asks for absurd memory on some forged files (a
// global-heap object read past its end, a metadata cache that never settles), with no call that
// bounds such an object before reading it; and some of its failures show only in a process that
// has read other files before. So before a tool reads a file, another process (the qkv-h5check
// helper, or a forked child where it is not installed) opens it and walks all of its metadata
// (h5_walk.hpp): every object, every attribute's value, every dataset's description and every
// string dataset's strings (the global heap), under limits of time and memory; then it writes
// the file's clean copy (h5_clean_copy.hpp) back to the tool, which reads that instead: the
// tool's process never decodes an untrusted file's metadata, except as told below.
// See "What a reader checks" in qkv-files(5).
#pragma once
#include <string>
#include <vector>

namespace qkv {

// What the tool reads after the check: the clean copy, or the file itself (in_place).
struct ProbeVerdict {
    bool in_place = true;
    std::vector<char> copy;
};

// A probe running in a child process. finish() waits for its verdict; a probe never finished
// is waited for when it goes (no child is left behind).
class Probe {
  public:
    Probe() = default;
    // Starts probing the file at path, or the in-memory image (one of the two); name labels
    // messages. Nothing starts for a file known to be readable (below).
    static Probe start(const std::string& name, const char* path, const std::vector<char>* image);
    Probe(Probe&& o) noexcept { *this = std::move(o); }
    Probe& operator=(Probe&& o) noexcept;
    Probe(const Probe&) = delete;
    Probe& operator=(const Probe&) = delete;
    ~Probe();
    ProbeVerdict finish(); // throws as probe_hdf5

  private:
    void spawn(const char* path, const std::vector<char>* image);
    std::string name_, path_;
    int pid_ = -1, out_ = -1;     // the child, and the memory file it writes the copy to
    bool checked_before_ = false; // a file on disk that passed a probe before, not probed now
};

// Probes the file at path, or the in-memory image (one of the two), and waits; name labels
// messages.
// Throws FormatError "NAME: not a readable qkv file (the HDF5 library failed while reading its
// metadata)" when the walker dies, runs past its time or past its memory (h5_walk.hpp), and
// "NAME: cannot open as HDF5 (truncated or damaged file?)" when the library could not open it.
// Another error that the library reports is not a failure: the real read reports it, with the
// dataset's name (objects the library cannot read are missing from the copy).
// Read in place, not copied: a file that this process wrote; a file on disk of more than
// kMaxCleanCopyBytes whose chunked data exceeds that too (an activation store); and a file on
// disk that passed a probe before and is the first such file this process reads (a tool's model,
// read in place by a library that has read nothing untrusted before, like the probe's). A file
// that passed is remembered, while unchanged, in the user's cache folder
// ($XDG_CACHE_HOME/qkv/hdf5-checked).
ProbeVerdict probe_hdf5(const std::string& name, const char* path, const std::vector<char>* image);

// A file qkv has written (H5Output), not probed when read.
void remember_written(const std::string& path);

// The user's cache folder for qkv: $XDG_CACHE_HOME/qkv, else ~/.cache/qkv; "" when neither is
// set. It holds hdf5-checked (above) and pipe-key (image_seal.hpp).
std::string qkv_cache_dir();

// For a fuzzer that looks for the library's own failures: probing off in this process.
void set_hdf5_probe(bool on);

} // namespace qkv
