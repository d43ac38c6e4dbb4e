// A ragged batch's /mask (model/padding.hpp): the first byte gives the batch (1..8), the rest
// int32 values [batch, pos]. A mask is refused with a FormatError, or every sequence's span
// and positions stay within the batch and the context.
#include "qkv/base/errors.hpp"
#include "qkv/model/padding.hpp"

#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const int64_t batch = 1 + data[0] % 8;
    const int64_t n_pos = static_cast<int64_t>((size - 1) / 4) / batch;
    qkv::Tensor mask = qkv::Tensor::zeros({batch, n_pos}, qkv::DType::I32);
    std::memcpy(mask.i32(), data + 1, batch * n_pos * 4);
    try {
        const qkv::Padding pad = qkv::Padding::from_mask(mask, "fuzz:/mask");
        const std::vector<int32_t> pos = pad.positions(3);
        for (int64_t b = 0; b < batch; ++b) {
            if (pad.begin(b) < 0 || pad.end(b) > n_pos || pad.begin(b) > pad.end(b)) std::abort();
            for (int64_t t = 0; t < n_pos; ++t)
                if (pos[b * n_pos + t] < 3 || pos[b * n_pos + t] >= 3 + n_pos) std::abort();
        }
    } catch (const qkv::FormatError&) {
    } catch (const qkv::ShapeError&) {
    }
    return 0;
}
