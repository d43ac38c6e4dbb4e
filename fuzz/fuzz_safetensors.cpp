// The safetensors reader: header JSON and tensor table against a data section, then the
// whole file path (length prefix, header, tensors read and converted).
#include "qkv/base/errors.hpp"
#include "qkv/files/safetensors.hpp"

#include <cstdio>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        qkv::Safetensors::parse_header(text, size, "fuzz");
    } catch (const qkv::Error&) {
    }
    char path[] = "/tmp/qkv-fuzz-st-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) return 0;
    if (write(fd, data, size) != static_cast<ssize_t>(size)) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    try {
        qkv::Safetensors s = qkv::Safetensors::open(path);
        for (const auto& [name, e] : s.entries())
            if (qkv::shape_numel(e.shape) <= (1 << 20)) s.read(name, e.shape);
    } catch (const qkv::Error&) {
    }
    unlink(path);
    return 0;
}
