#include "qkv/files/safetensors.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/tensor/half.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace qkv {

namespace {
// The tensor type a safetensors dtype names, where qkv reads it (F32, F16, BF16).
std::optional<DType> stored_dtype(const std::string& d) {
    if (d == "F32") return DType::F32;
    if (d == "F16") return DType::F16;
    if (d == "BF16") return DType::BF16;
    return std::nullopt; // unsupported
}
constexpr uint64_t kMaxHeader = 100ull << 20; // the format's own limit is 100 MB
} // namespace

std::map<std::string, SafetensorsEntry>
Safetensors::parse_header(const std::string& text, uint64_t data_size, const std::string& where) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw FormatError(where + ": safetensors header is not valid JSON");
    }
    if (!j.is_object()) throw FormatError(where + ": safetensors header is not a JSON object");
    std::map<std::string, SafetensorsEntry> out;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "__metadata__") continue;
        const std::string at = where + ": tensor '" + it.key() + "'";
        const auto& v = it.value();
        if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
            !v.contains("data_offsets") || !v["dtype"].is_string() || !v["shape"].is_array() ||
            !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
            throw FormatError(at + ": malformed entry (needs dtype, shape, data_offsets)");
        SafetensorsEntry e;
        e.dtype = v["dtype"].get<std::string>();
        uint64_t n = 1;
        for (auto& d : v["shape"]) {
            if (!d.is_number_unsigned()) throw FormatError(at + ": shape must be non-negative");
            const uint64_t x = d.get<uint64_t>();
            if (x > (1ull << 40) || (x && n > (1ull << 40) / x))
                throw FormatError(at + ": absurd shape");
            n *= x;
            e.shape.push_back(static_cast<int64_t>(x));
        }
        for (auto& o : v["data_offsets"])
            if (!o.is_number_unsigned()) throw FormatError(at + ": bad data_offsets");
        e.begin = v["data_offsets"][0].get<uint64_t>();
        e.end = v["data_offsets"][1].get<uint64_t>();
        if (e.begin > e.end || e.end > data_size)
            throw FormatError(at + ": data_offsets outside the file (truncated file?)");
        const std::optional<DType> t = stored_dtype(e.dtype);
        if (t && e.end - e.begin != n * dtype_size(*t))
            throw FormatError(at + ": data_offsets do not match shape and dtype");
        out.emplace(it.key(), std::move(e));
    }
    return out;
}

Safetensors::~Safetensors() {
    if (fd_ >= 0) ::close(fd_);
}

Safetensors::Safetensors(Safetensors&& o) noexcept
    : path_(std::move(o.path_)), fd_(o.fd_), data_offset_(o.data_offset_),
      entries_(std::move(o.entries_)) {
    o.fd_ = -1;
}

Safetensors Safetensors::open(const std::string& path) {
    Safetensors s;
    s.path_ = path;
    s.fd_ = ::open(path.c_str(), O_RDONLY);
    if (s.fd_ < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
    struct stat st;
    fstat(s.fd_, &st);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    unsigned char len_bytes[8];
    if (size < 8 || pread(s.fd_, len_bytes, 8, 0) != 8)
        throw FormatError(path + ": too short for a safetensors file");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i)
        header_len = (header_len << 8) | len_bytes[i];
    if (header_len > kMaxHeader || header_len > size - 8)
        throw FormatError(path + ": safetensors header length " + std::to_string(header_len) +
                          " exceeds the file");
    std::string header(header_len, '\0');
    if (pread(s.fd_, header.data(), header_len, 8) != static_cast<ssize_t>(header_len))
        throw IoError(path + ": cannot read the safetensors header");
    s.data_offset_ = 8 + header_len;
    s.entries_ = parse_header(header, size - s.data_offset_, path);
    return s;
}

Tensor Safetensors::read(const std::string& name, const Shape& expected) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) throw FormatError(path_ + ": missing tensor '" + name + "'");
    const SafetensorsEntry& e = it->second;
    if (e.shape != expected)
        throw ShapeError(path_ + ": tensor '" + name + "' has shape " + shape_str(e.shape) +
                         ", expected " + shape_str(expected));
    const std::optional<DType> type = stored_dtype(e.dtype);
    if (!type)
        throw FormatError(path_ + ": tensor '" + name + "' has unsupported dtype " + e.dtype +
                          " (F32, F16 or BF16 expected)");
    // The bytes as stored (little-endian host assumed: x86-64, arm64), then widened to float32.
    Tensor stored = Tensor::uninitialized(expected, *type);
    auto* p = static_cast<char*>(stored.data());
    const uint64_t bytes = e.end - e.begin;
    uint64_t done = 0;
    while (done < bytes) {
        ssize_t r = pread(fd_, p + done, bytes - done, data_offset_ + e.begin + done);
        if (r <= 0) throw IoError(path_ + ": cannot read tensor '" + name + "'");
        done += static_cast<uint64_t>(r);
    }
    return to_f32(stored);
}

} // namespace qkv
