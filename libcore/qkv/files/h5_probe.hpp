// h5_probe: an HDF5 input read first where a failure of the HDF5 library cannot take qkv down.
// HDF5 1.10 itself crashes, spins forever or asks for absurd memory on some forged files (a
// global-heap object read past its end, a metadata cache that never settles), with no call that
// bounds such an object before reading it. So before a tool opens a file for real, another
// process (the qkv-h5check helper, or a forked child where it is not installed) opens it and
// walks all of its metadata (h5_walk.hpp): every object, every attribute's value, every
// dataset's description and every string dataset's strings (the global heap), under limits of
// time and memory. Only when that process comes back with success does the tool read the file.
// See "What a reader checks" in qkv-files(5).
#pragma once
#include <string>
#include <vector>

namespace qkv {

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
    void finish(); // throws as probe_hdf5

  private:
    std::string name_, path_;
    int pid_ = -1;
};

// Probes the file at path, or the in-memory image (one of the two), and waits; name labels
// messages.
// Throws FormatError "NAME: not a readable qkv file (the HDF5 library failed while reading its
// metadata)" when the walker dies, runs past its time or past its memory (h5_walk.hpp). An error
// that the library reports is not a failure: the real read reports it, with the dataset's name. A
// file on disk that passed is remembered, while unchanged, in the user's cache folder
// ($XDG_CACHE_HOME/qkv/hdf5-checked) and not probed again; one that this process wrote is not
// probed either.
void probe_hdf5(const std::string& name, const char* path, const std::vector<char>* image);

// A file qkv has written (H5Output), not probed when read.
void remember_written(const std::string& path);

// The user's cache folder for qkv: $XDG_CACHE_HOME/qkv, else ~/.cache/qkv; "" when neither is
// set. It holds hdf5-checked (above) and pipe-key (image_seal.hpp).
std::string qkv_cache_dir();

// For a fuzzer that looks for the library's own failures: probing off in this process.
void set_hdf5_probe(bool on);

} // namespace qkv
