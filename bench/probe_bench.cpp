// probe_bench: what the check of an untrusted HDF5 input costs (files/h5_probe.hpp). For each
// file, read into memory as from a pipe (an image is never remembered as checked): the median of
// 21 probes (fork, open and walk in the child, wait) and of 21 opens of the image with H5File
// (the probe switched off), in milliseconds. Times are printed, never asserted.
//     build/bench/probe_bench gpt2.h5 acts.h5
#include "qkv/files/h5_probe.hpp"
#include "qkv/files/h5file.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

namespace {

template <typename F> double median_ms(F f) {
    std::vector<double> t;
    for (int i = 0; i < 21; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
    std::printf("%-40s %12s %12s\n", "file", "probe ms", "open ms");
    for (int i = 1; i < argc; ++i) {
        const std::string path = argv[i];
        std::ifstream in(path, std::ios::binary);
        const std::vector<char> image((std::istreambuf_iterator<char>(in)),
                                      std::istreambuf_iterator<char>());
        const double probe = median_ms([&] { qkv::probe_hdf5(path, nullptr, &image); });
        qkv::set_hdf5_probe(false);
        const double open = median_ms([&] { qkv::H5File::from_image(image, path); });
        qkv::set_hdf5_probe(true);
        std::printf("%-40s %12.2f %12.2f\n", path.c_str(), probe, open);
    }
    return 0;
}
