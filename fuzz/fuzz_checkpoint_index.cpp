// A sharded checkpoint's model.safetensors.index.json: the weight map parsed, then the folder
// opened through it (two small shards beside it) and every tensor it names read.
#include "qkv/base/errors.hpp"
#include "qkv/files/hf_checkpoint.hpp"

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {
// A folder with two one-tensor shards, a.safetensors (tensor "x") and b.safetensors ("y").
std::string make_dir() {
    static std::string dir;
    if (!dir.empty()) return dir;
    char tmpl[] = "/tmp/qkv-fuzz-index-XXXXXX";
    dir = mkdtemp(tmpl);
    for (const char* name : {"x", "y"}) {
        const std::string header = std::string(R"({")") + name +
                                   R"(":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}})";
        std::ofstream s(dir + "/" + (name[0] == 'x' ? "a" : "b") + ".safetensors",
                        std::ios::binary);
        const uint64_t n = header.size();
        s.write(reinterpret_cast<const char*>(&n), 8);
        s << header << std::string(8, '\x3f');
    }
    return dir;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string dir = make_dir();
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        qkv::parse_safetensors_index(text, "fuzz");
    } catch (const qkv::Error&) {
    }
    {
        std::ofstream c(dir + "/model.safetensors.index.json", std::ios::binary);
        c << text;
    }
    try {
        const qkv::CheckpointTensors c = qkv::CheckpointTensors::open(dir);
        for (const char* name : {"x", "y"})
            if (c.has(name)) c.read(name, {2, 2});
    } catch (const qkv::Error&) {
    }
    return 0;
}
