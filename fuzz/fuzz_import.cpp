// The model-import path from a checkpoint folder: the input is config.json; beside it the
// folder holds a byte-level vocabulary and a small safetensors file, so that whatever the
// config claims is checked against real files.
#include "qkv/base/errors.hpp"
#include "qkv/files/hf_import.hpp"
#include "qkv/files/model_file.hpp"

#include <cstdio>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {
std::string make_dir() {
    static std::string dir;
    if (!dir.empty()) return dir;
    char tmpl[] = "/tmp/qkv-fuzz-import-XXXXXX";
    dir = mkdtemp(tmpl);
    // GPT-2's vocabulary and merges, and a safetensors file with one small tensor
    const qkv::TokenizerData tok = qkv::gpt2_tokenizer_data();
    std::ofstream v(dir + "/vocab.json");
    v << "{";
    for (size_t i = 0; i < tok.vocab.size(); ++i) {
        std::string esc;
        for (char c : tok.vocab[i])
            esc += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
        v << (i ? "," : "") << '"' << esc << "\":" << i;
    }
    v << "}";
    std::ofstream m(dir + "/merges.txt");
    m << "#version: 0.2\n";
    for (const auto& x : tok.merges)
        m << x << "\n";
    const std::string header =
        R"({"wte.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
    std::ofstream s(dir + "/model.safetensors", std::ios::binary);
    const uint64_t n = header.size();
    s.write(reinterpret_cast<const char*>(&n), 8);
    s << header << std::string(16, '\0');
    return dir;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string dir = make_dir();
    {
        std::ofstream c(dir + "/config.json", std::ios::binary);
        c.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    qkv::ModelImportOptions o;
    o.from_dir = dir;
    o.output = dir + "/out.h5";
    try {
        qkv::model_import(o);
    } catch (const qkv::Error&) {
    }
    unlink((dir + "/out.h5").c_str());
    return 0;
}
