// Reading activation and model files from an in-memory HDF5 image (as from a pipe): open,
// walk every dataset and attribute we read, and read what is not absurdly large.
#include "base/errors.hpp"
#include "files/h5file.hpp"

#include <string>
#include <vector>

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
    return 0;
}
