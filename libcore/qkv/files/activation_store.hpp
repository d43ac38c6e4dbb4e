// activation_store: the activations of a whole corpus on disk, for sparse autoencoders and
// probes (block -f CORPUS --window N --save SITES --append STORE.h5), read lazily with h5py.
//   /store/tokens      int32 [window, pos]: each window's tokens
//   /store/positions   int32 [pos]: the positions of a window that are kept
//   /store/L/SITE      float32 [window, pos, ...]: the site of layer L at those positions
// chunked a window at a time, gzip-compressed, growing by whole windows. Attributes of /store
// say what it holds (sites, window, stride, the corpus's digest) and how many windows are
// complete (`windows`): it is written after each batch's rows have been flushed to the file,
// then flushed itself, so that rows past it (a run killed in the middle of a batch) are cut away
// when the store is opened again, and the run continues at the first window missing. (The
// library writes its metadata only when flushed; a kill in the middle of a flush of metadata
// is the one moment that can leave a damaged file.)
#pragma once
#include "qkv/files/h5file.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

struct StoreSite {
    int64_t layer = 0;
    std::string name;              // resid_pre, z, post, ...
    Shape row;                     // one window's values: [pos, ...]
    std::vector<std::string> dims; // the labels of [window, pos, ...]
};

struct StoreSpec {
    std::string model_id;
    std::vector<StoreSite> sites;
    int64_t window = 0, stride = 0;
    std::vector<int32_t> positions; // the positions of a window that are kept
    std::string corpus;             // corpus_digest() of the corpus's tokens
};

// SHA-256 of the tokens (their int32 little-endian bytes), in hex.
std::string corpus_digest(const int32_t* tokens, int64_t n);

class ActivationStore {
  public:
    // Opens the store at path to append to, creating it (atomically) when absent. An existing
    // store must hold the same model, sites, window, stride, positions and corpus, else a
    // FormatError names what differs and the file is left as it was.
    static ActivationStore open(const std::string& path, const StoreSpec& spec);
    int64_t windows() const { return windows_; } // complete windows
    // Appends n windows: tokens [n, window], and each site's values [n, row...] in spec order;
    // then counts them and flushes the file.
    void append(int64_t n, const int32_t* tokens, const std::vector<const float*>& sites);

  private:
    H5File file_;
    StoreSpec spec_;
    int64_t windows_ = 0;
};

} // namespace qkv
