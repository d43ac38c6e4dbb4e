#include "qkv/tensor/tensor.hpp"

#include "qkv/base/errors.hpp"

#include <cstdlib>
#include <cstring>
#include <sstream>

namespace qkv {

Device parse_device(const std::string& s) {
    if (s == "cpu") return Device::CPU;
    if (s == "cuda") return Device::CUDA;
    throw UsageError("--device: expected cpu or cuda, got '" + s + "'");
}

std::string shape_str(const Shape& s) {
    std::ostringstream o;
    o << '[';
    for (size_t i = 0; i < s.size(); ++i)
        o << (i ? ", " : "") << s[i];
    o << ']';
    return o.str();
}

int64_t shape_numel(const Shape& s) {
    int64_t n = 1;
    for (auto d : s)
        n *= d;
    return n;
}

namespace {
class HostStorage : public Storage {
  public:
    HostStorage(size_t bytes, bool zero_filled) {
        size_t rounded = ((bytes + 63) / 64) * 64;
        if (rounded == 0) rounded = 64;
        ptr_ = std::aligned_alloc(64, rounded);
        if (!ptr_) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
        if (zero_filled) std::memset(ptr_, 0, rounded);
    }
    ~HostStorage() override { std::free(ptr_); }
    void* data() override { return ptr_; }
    Device device() const override { return Device::CPU; }

  private:
    void* ptr_ = nullptr;
};
} // namespace

std::shared_ptr<Storage> host_storage(size_t bytes, bool zero_filled) {
    return std::make_shared<HostStorage>(bytes, zero_filled);
}

Tensor::Tensor(Shape shape, DType dtype, std::shared_ptr<Storage> storage)
    : shape_(std::move(shape)), dtype_(dtype), storage_(std::move(storage)) {}

namespace {
Tensor host_tensor(const Shape& shape, DType dtype, bool zero_filled) {
    for (auto d : shape)
        if (d < 0) throw ShapeError("negative dimension in shape " + shape_str(shape));
    return Tensor(
        shape, dtype,
        host_storage(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), zero_filled));
}
} // namespace

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
    return host_tensor(shape, dtype, true);
}

Tensor Tensor::uninitialized(const Shape& shape, DType dtype) {
    return host_tensor(shape, dtype, false);
}

size_t dtype_size(DType t) {
    return t == DType::F16 || t == DType::BF16 ? 2 : 4;
}

void Tensor::wrong_dtype() const {
    throw Error("internal: a 16-bit tensor " + shape_str(shape_) + " read as float32");
}

Tensor transpose2d(const Tensor& a) {
    const int64_t r = a.dim(0), c = a.dim(1);
    Tensor t = Tensor::zeros({c, r});
    for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j)
            t.f32()[j * r + i] = a.f32()[i * c + j];
    return t;
}

bool is_transpose_of(const Tensor& a, const Tensor& b) {
    const int64_t r = a.dim(0), c = a.dim(1);
    if (b.shape() != Shape{c, r}) return false;
    for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j)
            if (a.f32()[i * c + j] != b.f32()[j * r + i]) return false;
    return true;
}

Tensor Tensor::reshaped(const Shape& shape) const {
    if (shape_numel(shape) != numel())
        throw ShapeError("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
    return Tensor(shape, dtype_, storage_);
}

} // namespace qkv
