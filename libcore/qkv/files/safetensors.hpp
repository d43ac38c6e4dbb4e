// safetensors: reads the format's header ourselves (8 bytes of little-endian length, a JSON
// table, raw data) and converts F32, F16 and BF16 tensors to float32.
#pragma once
#include "qkv/tensor/tensor.hpp"

#include <map>
#include <string>

namespace qkv {

struct SafetensorsEntry {
    std::string dtype; // "F32", "F16", "BF16", ...
    Shape shape;
    uint64_t begin = 0, end = 0; // byte offsets into the data section
};

class Safetensors {
  public:
    static Safetensors open(const std::string& path);
    ~Safetensors();
    Safetensors(Safetensors&&) noexcept;
    Safetensors(const Safetensors&) = delete;

    const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
    bool has(const std::string& name) const { return entries_.count(name) != 0; }
    // The tensor as float32; its shape must equal expected.
    Tensor read(const std::string& name, const Shape& expected) const;

    // Parses a header (the JSON text) against a data section of data_size bytes.
    static std::map<std::string, SafetensorsEntry>
    parse_header(const std::string& json, uint64_t data_size, const std::string& where);

  private:
    Safetensors() = default;
    std::string path_;
    int fd_ = -1;
    uint64_t data_offset_ = 0;
    std::map<std::string, SafetensorsEntry> entries_;
};

} // namespace qkv
