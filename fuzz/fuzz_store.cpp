// Opening an activation store to append to (block --append): a file from anyone, checked in
// another process first as every HDF5 input is (files/h5_probe.hpp), then compared with what
// the run would append and cut back to its count of complete windows. The image is written to
// a file of its own, which the store changes in place.
#include "qkv/base/errors.hpp"
#include "qkv/files/activation_store.hpp"

#include <cstdio>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = "/tmp/qkv-fuzz-store-" + std::to_string(getpid()) + ".h5";
    if (FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(data, 1, size, f);
        std::fclose(f);
    }
    qkv::StoreSpec spec; // what fuzz/corpus/store/seed.h5 holds
    spec.model_id = "tiny-6982897315460872";
    spec.window = 8;
    spec.stride = 8;
    spec.positions = {0, 1, 2, 3, 4, 5, 6, 7};
    spec.corpus = "seed";
    spec.sites = {{0, "resid_pre", {8, 64}, {"window", "pos", "d_model"}}};
    try {
        qkv::ActivationStore s = qkv::ActivationStore::open(path, spec);
        const std::vector<int32_t> tokens(8, 1);
        const std::vector<float> rows(8 * 64, 0.5f);
        s.append(1, tokens.data(), {rows.data()});
    } catch (const qkv::Error&) {
    }
    std::remove(path.c_str());
    return 0;
}
