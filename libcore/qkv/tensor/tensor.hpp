// Tensor: a row-major float32 (or int32) array that lives on one device.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qkv {

enum class Device { CPU, CUDA };
Device parse_device(const std::string& s); // "cpu" | "cuda"

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s); // "[2, 5, 64]"
int64_t shape_numel(const Shape& s);

// Raw memory owned by a backend. Host memory is 64-byte aligned.
class Storage {
  public:
    virtual ~Storage() = default;
    virtual void* data() = 0;
    virtual Device device() const = 0;
};
std::shared_ptr<Storage> host_storage(size_t bytes, bool zero_filled = true);

// F16 and BF16 hold weights kept 16-bit in memory (half.hpp); the layers compute in F32.
enum class DType { F32, I32, F16, BF16 };
size_t dtype_size(DType t); // bytes per element

class Tensor {
  public:
    Tensor() = default;
    // A zero-filled host tensor.
    static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
    // A host tensor whose every element the caller writes next (a read, a copy): not zeroed,
    // so loading a model touches its memory once.
    static Tensor uninitialized(const Shape& shape, DType dtype = DType::F32);
    // Wraps storage made by a backend.
    Tensor(Shape shape, DType dtype, std::shared_ptr<Storage> storage);

    const Shape& shape() const { return shape_; }
    int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
    int rank() const { return static_cast<int>(shape_.size()); }
    int64_t numel() const { return shape_numel(shape_); }
    DType dtype() const { return dtype_; }
    Device device() const { return storage_ ? storage_->device() : Device::CPU; }
    bool empty() const { return !storage_; }

    float* f32() { return static_cast<float*>(checked(DType::F32)); }
    const float* f32() const { return static_cast<const float*>(checked(DType::F32)); }
    int32_t* i32() { return static_cast<int32_t*>(storage_->data()); }
    const int32_t* i32() const { return static_cast<const int32_t*>(storage_->data()); }
    void* data() { return storage_->data(); } // any dtype, as bytes
    const void* data() const { return storage_->data(); }
    uint16_t* u16() { return static_cast<uint16_t*>(storage_->data()); } // F16 or BF16 bits
    const uint16_t* u16() const { return static_cast<const uint16_t*>(storage_->data()); }

    // Same storage, new shape with the same number of elements.
    Tensor reshaped(const Shape& shape) const;

  private:
    // The data, once sure that a 16-bit tensor is not read as float32 (an internal error).
    void* checked(DType want) const {
        if (dtype_ != want && dtype_ != DType::I32) wrong_dtype();
        return storage_->data();
    }
    [[noreturn]] void wrong_dtype() const;
    Shape shape_;
    DType dtype_ = DType::F32;
    std::shared_ptr<Storage> storage_;
};

// [rows, cols] -> [cols, rows], a new host tensor (float32).
Tensor transpose2d(const Tensor& a);
// b holds exactly a transposed (a [rows, cols], b [cols, rows]): a tied unembedding.
bool is_transpose_of(const Tensor& a, const Tensor& b);

} // namespace qkv
