// backend_loader: picks the backend for --device. The CUDA backend is a module of its own
// (libqkvcuda.so, linked to cudart and cuBLAS) loaded with dlopen only when a tool asks for
// cuda, so the CPU tools never load the CUDA libraries (about 200 MiB of memory and a tenth of
// a second at start).
#include "qkv/base/errors.hpp"
#include "qkv/tensor/backend.hpp"

#include <cstdlib>
#include <dlfcn.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace qkv {

namespace {

struct CudaModule {
    void* handle = nullptr;
    int (*device_count)() = nullptr;
    Backend* (*make)() = nullptr;
    std::string error;
};

std::string exe_dir() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    std::string p(buf, static_cast<size_t>(n));
    return p.substr(0, p.rfind('/'));
}

const CudaModule& cuda_module() {
    static const CudaModule m = [] {
        CudaModule mod;
        std::vector<std::string> tries;
        if (const char* env = std::getenv("QKV_CUDA_MODULE")) tries.push_back(env);
        const std::string dir = exe_dir();
        // beside the tool; installed, from a tool (libexec/qkv/bin/..) or qkv (bin/..); the
        // build tree (tools/../libcore)
        for (const char* rel : {"/libqkvcuda.so", "/../libqkvcuda.so",
                                "/../libexec/qkv/libqkvcuda.so", "/../libcore/libqkvcuda.so"})
            tries.push_back(dir + rel);
#ifdef QKV_CUDA_MODULE_DIR
        tries.push_back(std::string(QKV_CUDA_MODULE_DIR) + "/libqkvcuda.so");
#endif
        for (const auto& path : tries) {
            if (access(path.c_str(), R_OK) != 0) continue;
            mod.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!mod.handle) {
                mod.error = dlerror();
                continue;
            }
            mod.device_count =
                reinterpret_cast<int (*)()>(dlsym(mod.handle, "qkv_cuda_device_count"));
            mod.make = reinterpret_cast<Backend* (*)()>(dlsym(mod.handle, "qkv_make_cuda_backend"));
            if (mod.device_count && mod.make) return mod;
            mod.error = path + ": not a qkv CUDA module";
        }
        if (mod.error.empty())
            mod.error = "no libqkvcuda.so beside the tools (a build without CUDA)";
        return mod;
    }();
    return m;
}

} // namespace

bool cuda_device_available() {
    const CudaModule& m = cuda_module();
    return m.device_count && m.device_count() > 0;
}

std::unique_ptr<Backend> make_backend(Device device, int threads) {
    if (device == Device::CPU) return make_cpu_backend(threads);
    const CudaModule& m = cuda_module();
    if (!m.make)
        throw Error("--device cuda: the CUDA backend cannot be loaded (" + m.error +
                    "; configure with QKV_CUDA=ON where the CUDA toolkit is installed)");
    if (m.device_count() <= 0)
        throw Error("--device cuda: no CUDA device is available on this machine");
    return std::unique_ptr<Backend>(m.make());
}

} // namespace qkv
