// Option parsers with structure: layer ranges (3:7, all, -2:), position lists (0,4:6,-1), slices
// (0,:,3) and head lists.
#include "commands/cli.hpp"
#include "commands/inspect.hpp"
#include "qkv/base/errors.hpp"

#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        auto r = qkv::parse_layer_range(text, 12, "--layers");
        if (r.start < 0 || r.stop > 12 || r.start >= r.stop) std::abort();
    } catch (const qkv::UsageError&) {
    }
    try {
        for (int64_t p : qkv::parse_index_list(text, 9, "--positions"))
            if (p < 0 || p >= 9) std::abort();
    } catch (const qkv::UsageError&) {
    }
    try {
        const std::vector<int64_t> shape = {2, 7, 5};
        auto axes = qkv::parse_slice(text, shape);
        for (size_t i = 0; i < axes.size(); ++i)
            if (axes[i].start < 0 || axes[i].stop > shape[i] || axes[i].start > axes[i].stop)
                std::abort();
    } catch (const qkv::UsageError&) {
    }
    try {
        for (auto h : qkv::parse_head_list(text, 12, "--heads"))
            if (h < 0 || h >= 12) std::abort();
    } catch (const qkv::UsageError&) {
    }
    return 0;
}
