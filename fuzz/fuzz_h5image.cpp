// Reading activation and model files from an in-memory HDF5 image (as from a pipe): open,
// walk every dataset and attribute we read, and read what is not absurdly large. The image is
// probed first in a child process, as every tool does (files/h5_probe.hpp), and what is read
// here is the clean copy that process hands back (files/h5_clean_copy.hpp); with
// QKV_FUZZ_UNPROBED=1 in the environment it is not, and the fuzzer finds the HDF5 library's own
// failures (the inputs of tests/data/hostile-h5 were found so).
#include "qkv/base/errors.hpp"
#include "qkv/files/h5_probe.hpp"
#include "qkv/files/h5file.hpp"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* raw = std::getenv("QKV_FUZZ_UNPROBED");
    if (raw && std::strcmp(raw, "1") == 0) qkv::set_hdf5_probe(false);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<char> bytes(data, data + size);
    try {
        qkv::H5File f = qkv::H5File::from_image(std::move(bytes), "<fuzz>");
        for (const char* a : {"format", "model_id", "stage", "history"})
            if (f.has_attr("/", a)) f.attr_str("/", a);
        if (f.has_attr("/", "layer")) f.attr_int("/", "layer");
        int n = 0;
        for (const auto& name : f.datasets("/")) {
            if (++n > 64) break;
            qkv::DatasetInfo in = f.info(name);
            if (qkv::shape_numel(in.shape) > (1 << 22)) continue;
            if (in.kind == qkv::ValueKind::Float)
                f.read_f32(name);
            else if (in.kind == qkv::ValueKind::Integer)
                f.read_i32(name);
            else if (in.kind == qkv::ValueKind::String)
                f.read_strings(name);
        }
    } catch (const qkv::Error&) {
    }
    // Nothing of the image may stay open once its H5File is gone: the library is reset between
    // files only when nothing is open (files/h5_api.hpp, reset_hdf5_between_files).
    if (qkv::open_hdf5_objects() != 0) __builtin_trap();
    return 0;
}
