// Tokenizer throughput: encodes a text file several times on one thread and prints the median
// MB/s (bytes of input / seconds of encode, the vocabulary already loaded) as JSON.
#include "qkv/files/model_file.hpp"
#include "qkv/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: tokenizer_bench FILE [RUNS]\n");
        return 2;
    }
    std::ifstream f(argv[1], std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "tokenizer_bench: cannot open %s\n", argv[1]);
        return 1;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
    std::vector<double> mbps;
    size_t n_tokens = 0;
    for (int r = 0; r < runs; ++r) {
        qkv::Tokenizer tok(qkv::gpt2_tokenizer_data()); // fresh: no warm piece cache
        const auto t0 = std::chrono::steady_clock::now();
        n_tokens = tok.encode(text).size();
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        mbps.push_back(text.size() / 1e6 / s);
    }
    std::sort(mbps.begin(), mbps.end());
    std::printf("{\"bytes\": %zu, \"tokens\": %zu, \"runs\": %d, \"mb_per_s_median\": %.2f, "
                "\"mb_per_s_min\": %.2f, \"mb_per_s_max\": %.2f}\n",
                text.size(), n_tokens, runs, mbps[mbps.size() / 2], mbps.front(), mbps.back());
}
