#include "qkv/files/h5file.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/dimension_names.hpp"
#include "qkv/files/h5_api.hpp"
#include "qkv/files/image_seal.hpp"
#include "qkv/tensor/half.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <iostream>
#include <sys/stat.h>
#include <type_traits>
#include <unistd.h>

namespace qkv {

static_assert(std::is_same_v<haddr_t, uint64_t>, "walk() keeps haddr_t as uint64_t");

namespace {

// The file and memory type of a 16-bit float: little-endian, sign bit 15; IEEE half has 5
// exponent bits (bias 15) and 10 mantissa bits, bfloat16 8 (bias 127) and 7.
H5Id half_type(DType t) {
    const bool f16 = t == DType::F16;
    const size_t man = f16 ? 10 : 7, exp = f16 ? 5 : 8;
    H5Id h(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
    if (H5Tset_fields(h, 15, man, exp, 0, man) < 0 || H5Tset_precision(h, 16) < 0 ||
        H5Tset_offset(h, 0) < 0 || H5Tset_size(h, 2) < 0 || H5Tset_ebias(h, f16 ? 15 : 127) < 0)
        throw Error("internal: cannot make a 16-bit float type");
    return h;
}

// F16 or BF16 when a 2-byte float type has exactly that layout, F32 (read converted) otherwise.
DType half_layout(hid_t type) {
    size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0 || spos != 15 || mpos != 0 ||
        H5Tget_order(type) != H5T_ORDER_LE || H5Tget_offset(type) != 0)
        return DType::F32;
    const size_t bias = H5Tget_ebias(type);
    if (esize == 5 && msize == 10 && epos == 10 && bias == 15) return DType::F16;
    if (esize == 8 && msize == 7 && epos == 7 && bias == 127) return DType::BF16;
    return DType::F32;
}

struct ConfigureHdf5 {
    ConfigureHdf5() { configure_hdf5(); }
} configure_hdf5_at_start;

// The temporary file of the output in progress, removed if a signal stops the run.
char g_temp_path[4096] = {0};

extern "C" void remove_temp_and_reraise(int sig) {
    if (g_temp_path[0]) unlink(g_temp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

// Temporary files of earlier runs that were killed (SIGKILL leaves them): ".NAME.tmp-PID" or
// "NAME.tmp-PID" beside the target whose process no longer exists.
void remove_stale_temps(const std::string& dir, const std::string& base) {
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    const std::string prefixes[2] = {"." + base + ".tmp-", base + ".tmp-"};
    while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        for (const auto& prefix : prefixes) {
            if (name.rfind(prefix, 0) != 0) continue;
            const std::string pid_text = name.substr(prefix.size());
            if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos)
                continue;
            const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
            if (pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH)
                unlink((dir + "/" + name).c_str());
        }
    }
    closedir(d);
}

void split_path(const std::string& path, std::string& dir, std::string& base) {
    dir = ".";
    base = path;
    if (auto slash = path.rfind('/'); slash != std::string::npos) {
        dir = slash == 0 ? "/" : path.substr(0, slash);
        base = path.substr(slash + 1);
    }
}

void install_signal_cleanup(const std::string& temp) {
    std::snprintf(g_temp_path, sizeof g_temp_path, "%s", temp.c_str());
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE})
        signal(sig, remove_temp_and_reraise);
}
void clear_signal_cleanup() {
    g_temp_path[0] = 0;
}

constexpr char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
// Guards against files that claim absurd tensors before anything is allocated.
constexpr int64_t kMaxElements = int64_t(1) << 34;

// The end-of-file address in an HDF5 superblock at offset 0 (versions 0 to 3, 8-byte
// offsets); 0 when it cannot be read, so that HDF5's own checks decide.
uint64_t superblock_eof(const std::vector<char>& img) {
    if (img.size() < 64) return 0;
    const auto* p = reinterpret_cast<const unsigned char*>(img.data());
    const int version = p[8];
    size_t at = 0, offset_size = 0;
    if (version == 0 || version == 1) {
        offset_size = p[13];
        at = (version == 0 ? 24 : 28) + 2 * offset_size; // base, free-space, then end of file
    } else if (version == 2 || version == 3) {
        offset_size = p[9];
        at = 12 + 2 * offset_size; // base, extension, then end of file
    } else {
        return 0;
    }
    if (offset_size != 8 || at + 8 > img.size()) return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8) | p[at + i];
    return v == ~uint64_t(0) ? 0 : v;
}

} // namespace

void H5Handle::reset() {
    if (id_ >= 0) {
        H5Fclose(id_);
        reset_hdf5_between_files();
    }
    id_ = -1;
}

bool is_stdio(const std::string& path) {
    return path.empty() || path == "-";
}

std::vector<char> read_all(const std::string& path) {
    FILE* f = is_stdio(path) ? stdin : std::fopen(path.c_str(), "rb");
    if (!f) throw IoError(path + ": cannot open: " + std::strerror(errno));
    std::vector<char> data;
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        data.insert(data.end(), buf, buf + n);
    const bool bad = std::ferror(f);
    if (f != stdin) std::fclose(f);
    if (bad) throw IoError((is_stdio(path) ? "<stdin>" : path) + ": read error");
    return data;
}

namespace {

// Writes all of data to fd; false (errno set) on failure.
bool write_all(int fd, const char* p, size_t left) {
    while (left > 0) {
        ssize_t w = ::write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        left -= static_cast<size_t>(w);
    }
    return true;
}

} // namespace

void write_atomic(const std::string& path, const void* data, size_t n) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        // a device or a named pipe (/dev/null, /dev/stdout): written to, never replaced
        const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        const bool ok = fd >= 0 && write_all(fd, static_cast<const char*>(data), n);
        const std::string err = std::strerror(errno);
        if (fd >= 0) ::close(fd);
        if (!ok) throw IoError(path + ": cannot write: " + err);
        return;
    }
    {
        std::string dir, base;
        split_path(path, dir, base);
        remove_stale_temps(dir, base);
    }
    const std::string temp = path + ".tmp-" + std::to_string(getpid());
    install_signal_cleanup(temp);
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) throw IoError(path + ": cannot create: " + std::strerror(errno));
    if (!write_all(fd, static_cast<const char*>(data), n)) {
        const std::string err = std::strerror(errno);
        ::close(fd);
        unlink(temp.c_str());
        clear_signal_cleanup();
        throw IoError(path + ": write failed: " + err);
    }
    if (fsync(fd) != 0 || ::close(fd) != 0 || std::rename(temp.c_str(), path.c_str()) != 0) {
        const std::string err = std::strerror(errno);
        unlink(temp.c_str());
        clear_signal_cleanup();
        throw IoError(path + ": cannot write: " + err);
    }
    clear_signal_cleanup();
}

void check_not_same_file(const std::string& in, const std::string& out) {
    if (is_stdio(in) || is_stdio(out)) return;
    struct stat a, b;
    if (stat(in.c_str(), &a) == 0 && stat(out.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
        throw UsageError("-o " + out + ": is the input file; write the output elsewhere");
}

// ---------------------------------------------------------------- reading

H5Input H5Input::start(const std::string& path) {
    if (is_stdio(path)) return start_image(read_all(path), "<stdin>");
    struct stat st;
    if (stat(path.c_str(), &st) != 0)
        throw IoError(path + ": cannot open: " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw IoError(path + ": is a directory, expected an HDF5 file");
    // A named pipe or process substitution (<(embed ...)) is read whole, like stdin.
    if (!S_ISREG(st.st_mode)) return start_image(read_all(path), path);
    if (st.st_size == 0) throw FormatError(path + ": empty file, expected an HDF5 file");
    if (H5Fis_hdf5(path.c_str()) <= 0)
        throw FormatError(path + ": not an HDF5 file (no HDF5 signature)");
    H5Input in;
    in.name_ = in.path_ = path;
    in.probe_ = Probe::start(path, path.c_str(), nullptr);
    return in;
}

H5Input H5Input::start_image(std::vector<char> image, const std::string& name) {
    if (image.empty()) throw FormatError(name + ": empty input, expected an HDF5 file");
    if (image.size() < 8 || std::memcmp(image.data(), kSignature, 8) != 0)
        throw FormatError(name + ": not an HDF5 file (no HDF5 signature)");
    H5Input in;
    in.name_ = name;
    in.image_ = std::move(image);
    // An image a qkv stage of this user wrote to the pipe (image_seal.hpp) needs no check.
    const bool sealed = unseal_image(in.image_);
    // The core driver does not notice a short image by itself: compare with the end-of-file
    // address in the superblock.
    const uint64_t eof = superblock_eof(in.image_);
    if (eof > in.image_.size())
        throw FormatError(name + ": truncated HDF5 file (" + std::to_string(in.image_.size()) +
                          " of " + std::to_string(eof) + " bytes)");
    if (!sealed) in.probe_ = Probe::start(name, nullptr, &in.image_);
    return in;
}

H5File H5Input::open() {
    ProbeVerdict verdict = probe_.finish();
    // The blocks the library keeps on its free lists from files still open (the model, while
    // the input is read) are given back first: HDF5 1.10 reads stale contents of a recycled
    // block on some forged files. (With nothing open, the library was restarted when the last
    // file closed.)
    if (open_hdf5_objects() != 0) H5garbage_collect();
    H5File f;
    f.name_ = name_;
    if (!verdict.in_place) { // the file's clean copy
        image_ = std::move(verdict.copy);
        f.clean_copy_ = true;
    } else if (!path_.empty()) {
        f.file_ = H5Handle(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
        if (!f.file_.valid())
            throw FormatError(name_ + ": cannot open as HDF5 (truncated or damaged file?)");
        return f;
    }
    // The library copies the image: ours can go once the file is open.
    f.file_ = H5Handle(open_image(image_));
    if (!f.file_.valid())
        throw FormatError(name_ + ": cannot open as HDF5 (truncated or damaged file?)");
    image_.clear();
    image_.shrink_to_fit();
    return f;
}

H5File H5File::open_read(const std::string& path) {
    return H5Input::start(path).open();
}

size_t open_hdf5_objects() {
    const ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    return n < 0 ? 0 : static_cast<size_t>(n);
}

H5File H5File::from_image(std::vector<char> image, const std::string& name) {
    return H5Input::start_image(std::move(image), name).open();
}

std::string H5File::where(const std::string& obj) const {
    return name_ + ":" + obj;
}

bool H5File::exists(const std::string& path) const {
    return link_path_exists(file_, path);
}

std::vector<std::string> H5File::dimension_labels(const std::string& dataset) const {
    const int rank = static_cast<int>(info(dataset).shape.size());
    H5Id d(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.valid()) throw FormatError(where(dataset) + ": not a readable dataset");
    return read_dimension_labels(d, rank);
}

DatasetInfo H5File::info(const std::string& dataset) const {
    if (!exists(dataset)) throw FormatError(where(dataset) + ": dataset not found");
    H5Id d(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.valid()) throw FormatError(where(dataset) + ": not a readable dataset");
    H5Id space(H5Dget_space(d), H5Sclose);
    H5Id type(H5Dget_type(d), H5Tclose);
    const int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0) throw FormatError(where(dataset) + ": unreadable dataspace");
    std::vector<hsize_t> dims(rank);
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    DatasetInfo info;
    for (auto v : dims)
        info.shape.push_back(static_cast<int64_t>(v));
    switch (H5Tget_class(type)) {
    case H5T_FLOAT:
        info.kind = ValueKind::Float;
        break;
    case H5T_INTEGER:
        info.kind = ValueKind::Integer;
        break;
    case H5T_STRING:
        info.kind = ValueKind::String;
        break;
    default:
        info.kind = ValueKind::Other;
    }
    info.type_size = H5Tget_size(type);
    if (info.kind == ValueKind::Float && info.type_size == 2) info.half = half_layout(type);
    int64_t n = 1;
    for (auto v : info.shape) {
        if (v < 0 || (v > 0 && n > kMaxElements / v))
            throw FormatError(where(dataset) + ": claims an absurd size " + shape_str(info.shape));
        n *= v;
    }
    return info;
}

namespace {
void check_rank(const std::string& where, const Shape& shape, int expected) {
    if (expected >= 0 && static_cast<int>(shape.size()) != expected)
        throw ShapeError(where + ": expected rank " + std::to_string(expected) + ", found shape " +
                         shape_str(shape));
}
} // namespace

namespace {
// A dataset must really hold what its shape claims before we allocate for it: contiguous data
// must be stored in full, and nothing may ask for more memory than the machine has. Its data
// must be inside the file: a file's datasets stored in other files (external or virtual) would
// make qkv read any file the writer names; only a clean copy's, which refer to the original
// (h5_clean_copy.hpp), are read.
void check_plausible(hid_t d, const DatasetInfo& in, size_t elem, const std::string& where,
                     bool clean_copy) {
    const uint64_t want = static_cast<uint64_t>(shape_numel(in.shape)) * elem;
    H5Id dcpl(H5Dget_create_plist(d), H5Pclose);
    if (dcpl.valid() &&
        (H5Pget_layout(dcpl) == H5D_VIRTUAL || (!clean_copy && H5Pget_external_count(dcpl) != 0)))
        throw FormatError(where + ": its data is stored in other files (qkv reads only data "
                                  "inside the file)");
    if (dcpl.valid() && H5Pget_layout(dcpl) == H5D_CONTIGUOUS && want > 0) {
        const hsize_t stored = H5Dget_storage_size(d);
        if (stored < want)
            throw FormatError(where + ": claims " + shape_str(in.shape) + " (" +
                              std::to_string(want) + " bytes) but stores " +
                              std::to_string(stored) + " (truncated or forged file?)");
    }
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0 && want > static_cast<uint64_t>(pages) * page / 4 * 3)
        throw FormatError(where + ": " + shape_str(in.shape) + " needs " +
                          std::to_string(want >> 20) +
                          " MiB, more than this machine's memory allows");
}
} // namespace

// Opens a non-empty float dataset, checked to hold what its shape claims, and reads it into the
// memory that allocate() gives once the checks have passed: described and opened once.
void H5File::read_floats(const std::string& dataset, const DatasetInfo& in,
                         const std::function<float*()>& allocate) const {
    if (in.kind != ValueKind::Float)
        throw FormatError(where(dataset) + ": expected floating-point data");
    if (shape_numel(in.shape) == 0) return;
    H5Id d(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
    check_plausible(d, in, in.type_size, where(dataset), clean_copy_);
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, allocate()) < 0)
        throw FormatError(where(dataset) + ": read failed (truncated or damaged file?)");
}

Tensor H5File::read_f32(const std::string& dataset, int expected_rank) const {
    const DatasetInfo in = info(dataset);
    check_rank(where(dataset), in.shape, expected_rank);
    Tensor t;
    read_floats(dataset, in, [&] {
        t = Tensor::uninitialized(in.shape);
        return t.f32();
    });
    return t.empty() ? Tensor::zeros(in.shape) : t;
}

void H5File::read_f32_into(const std::string& dataset, const Shape& expected, float* out) const {
    const DatasetInfo in = info(dataset);
    if (in.kind == ValueKind::Float && in.shape != expected)
        throw ShapeError(where(dataset) + ": expected shape " + shape_str(expected) + ", found " +
                         shape_str(in.shape));
    read_floats(dataset, in, [out] { return out; });
}

Tensor H5File::read_floats_as_stored(const std::string& dataset, const Shape& expected,
                                     bool keep_half) const {
    const DatasetInfo in = info(dataset);
    if (in.kind == ValueKind::Float && in.shape != expected)
        throw ShapeError(where(dataset) + ": expected shape " + shape_str(expected) + ", found " +
                         shape_str(in.shape));
    if (!keep_half || in.half == DType::F32) {
        Tensor t = Tensor::uninitialized(expected);
        read_floats(dataset, in, [&t] { return t.f32(); });
        return t;
    }
    Tensor t = Tensor::uninitialized(expected, in.half);
    if (t.numel() == 0) return t;
    H5Id d(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
    check_plausible(d, in, in.type_size, where(dataset), clean_copy_);
    H5Id memory = half_type(in.half); // the stored layout: read without conversion
    if (H5Dread(d, memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.u16()) < 0)
        throw FormatError(where(dataset) + ": read failed (truncated or damaged file?)");
    return t;
}

void H5File::read_rows(const std::string& dataset, int64_t row0, int64_t n, int64_t cols,
                       DType type, void* out) const {
    const DatasetInfo in = info(dataset);
    if (in.kind != ValueKind::Float || in.shape.size() != 2 || in.shape[1] != cols || row0 < 0 ||
        n < 0 || row0 + n > in.shape[0])
        throw ShapeError(where(dataset) + ": expected " + std::to_string(row0 + n) + "+ rows of " +
                         std::to_string(cols) + " floats, found " + shape_str(in.shape));
    if (n == 0 || cols == 0) return;
    H5Id d(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
    check_plausible(d, in, in.type_size, where(dataset), clean_copy_);
    const hsize_t start[2] = {static_cast<hsize_t>(row0), 0};
    const hsize_t count[2] = {static_cast<hsize_t>(n), static_cast<hsize_t>(cols)};
    H5Id file_space(H5Dget_space(d), H5Sclose);
    H5Id mem(H5Screate_simple(2, count, nullptr), H5Sclose);
    H5Id half = is_half(type) ? half_type(type) : H5Id();
    if (H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
        H5Dread(d, is_half(type) ? hid_t(half) : H5T_NATIVE_FLOAT, mem, file_space, H5P_DEFAULT,
                out) < 0)
        throw FormatError(where(dataset) + ": read failed (truncated or damaged file?)");
}

Tensor H5File::read_i32(const std::string& dataset, int expected_rank) const {
    DatasetInfo in = info(dataset);
    check_rank(where(dataset), in.shape, expected_rank);
    if (in.kind != ValueKind::Integer)
        throw FormatError(where(dataset) + ": expected integer data");
    if (shape_numel(in.shape) == 0) return Tensor::zeros(in.shape, DType::I32);
    H5Id d(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
    check_plausible(d, in, in.type_size, where(dataset), clean_copy_);
    Tensor t = Tensor::uninitialized(in.shape, DType::I32);
    if (H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.i32()) < 0)
        throw FormatError(where(dataset) + ": read failed (values out of int32 range, or a "
                                           "damaged file?)");
    return t;
}

std::vector<std::string> H5File::read_strings(const std::string& dataset) const {
    DatasetInfo in = info(dataset);
    if (in.kind != ValueKind::String) throw FormatError(where(dataset) + ": expected strings");
    const int64_t n = shape_numel(in.shape);
    std::vector<std::string> out;
    if (n == 0) return out;
    H5Id d(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
    H5Id ftype(H5Dget_type(d), H5Tclose);
    // a variable-length string is stored as a 16-byte reference into the global heap
    check_plausible(d, in, H5Tis_variable_str(ftype) > 0 ? 16 : in.type_size, where(dataset),
                    clean_copy_);
    if (H5Tis_variable_str(ftype) > 0) {
        // (within a budget: a forged length must not make HDF5 allocate gigabytes)
        if (!read_vlen_strings(d, n, out))
            throw FormatError(where(dataset) +
                              ": read failed (or the strings claim an implausible total length)");
    } else {
        const size_t sz = H5Tget_size(ftype);
        std::vector<char> buf(static_cast<size_t>(n) * sz);
        if (H5Dread(d, ftype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
            throw FormatError(where(dataset) + ": read failed");
        for (int64_t i = 0; i < n; ++i) {
            const char* s = buf.data() + i * sz;
            out.emplace_back(s, strnlen(s, sz));
        }
    }
    return out;
}

bool H5File::has_attr(const std::string& obj, const std::string& attr) const {
    if (!exists(obj)) return false;
    return H5Aexists_by_name(file_, obj.c_str(), attr.c_str(), H5P_DEFAULT) > 0;
}

std::string H5File::attr_str(const std::string& obj, const std::string& attr) const {
    if (!has_attr(obj, attr)) throw FormatError(where(obj) + ": attribute '" + attr + "' missing");
    H5Id a(H5Aopen_by_name(file_, obj.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    H5Id ftype(H5Aget_type(a), H5Tclose);
    if (H5Tget_class(ftype) != H5T_STRING)
        throw FormatError(where(obj) + ": attribute '" + attr + "' is not a string");
    H5Id space(H5Aget_space(a), H5Sclose);
    if (H5Sget_simple_extent_npoints(space) != 1)
        throw FormatError(where(obj) + ": attribute '" + attr + "' is not a single string");
    if (H5Tis_variable_str(ftype) > 0) {
        H5Id mtype = utf8_vlen_string_type();
        char* p = nullptr;
        if (H5Aread(a, mtype, &p) < 0) throw FormatError(where(obj) + ": cannot read " + attr);
        std::string s = p ? p : "";
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, &p);
        return s;
    }
    const size_t sz = H5Tget_size(ftype);
    std::vector<char> buf(sz + 1, 0);
    if (H5Aread(a, ftype, buf.data()) < 0) throw FormatError(where(obj) + ": cannot read " + attr);
    return std::string(buf.data(), strnlen(buf.data(), sz));
}

int64_t H5File::attr_int(const std::string& obj, const std::string& attr) const {
    if (!has_attr(obj, attr)) throw FormatError(where(obj) + ": attribute '" + attr + "' missing");
    H5Id a(H5Aopen_by_name(file_, obj.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    H5Id ftype(H5Aget_type(a), H5Tclose);
    H5Id space(H5Aget_space(a), H5Sclose);
    if (H5Tget_class(ftype) != H5T_INTEGER || H5Sget_simple_extent_npoints(space) != 1)
        throw FormatError(where(obj) + ": attribute '" + attr + "' is not an integer");
    int64_t v = 0;
    if (H5Aread(a, H5T_NATIVE_INT64, &v) < 0)
        throw FormatError(where(obj) + ": cannot read " + attr);
    return v;
}

double H5File::attr_double(const std::string& obj, const std::string& attr) const {
    if (!has_attr(obj, attr)) throw FormatError(where(obj) + ": attribute '" + attr + "' missing");
    H5Id a(H5Aopen_by_name(file_, obj.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    H5Id ftype(H5Aget_type(a), H5Tclose);
    H5Id space(H5Aget_space(a), H5Sclose);
    const auto cls = H5Tget_class(ftype);
    if ((cls != H5T_FLOAT && cls != H5T_INTEGER) || H5Sget_simple_extent_npoints(space) != 1)
        throw FormatError(where(obj) + ": attribute '" + attr + "' is not a number");
    double v = 0;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0)
        throw FormatError(where(obj) + ": cannot read " + attr);
    return v;
}

std::vector<std::string> H5File::list(const std::string& group) const {
    std::vector<std::string> names;
    if (!exists(group)) return names;
    H5Id g(H5Gopen2(file_, group.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) return names;
    H5G_info_t gi;
    if (H5Gget_info(g, &gi) < 0) throw FormatError(where(group) + ": unreadable group");
    for (hsize_t i = 0; i < gi.nlinks; ++i) {
        ssize_t len =
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
        if (len < 0) throw FormatError(where(group) + ": unreadable group");
        std::string name(static_cast<size_t>(len) + 1, '\0');
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                           H5P_DEFAULT);
        name.resize(static_cast<size_t>(len));
        names.push_back(name);
    }
    return names;
}

bool H5File::is_group(const std::string& path) const {
    if (!exists(path)) return false;
    H5Id o(H5Oopen(file_, path.c_str(), H5P_DEFAULT), H5Oclose);
    return o.valid() && H5Iget_type(o) == H5I_GROUP;
}

namespace {
// The address of an object in its file, to recognise a group met twice (hard links can make
// cycles: a file may link a group inside itself).
haddr_t object_address(hid_t file, const std::string& path) {
    H5O_info_t info;
    if (H5Oget_info_by_name2(file, path.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
        return HADDR_UNDEF;
    return info.addr;
}
} // namespace

std::vector<std::string> H5File::datasets(const std::string& group) const {
    std::vector<std::string> out;
    std::vector<haddr_t> seen = {object_address(file_, group)};
    walk(group, 0, seen, out);
    return out;
}

void H5File::walk(const std::string& group, int depth, std::vector<haddr_t>& seen,
                  std::vector<std::string>& out) const {
    constexpr int kMaxDepth = 32;
    constexpr size_t kMaxObjects = 100000;
    if (depth > kMaxDepth)
        throw FormatError(where(group) + ": groups nested more than " + std::to_string(kMaxDepth) +
                          " deep");
    const std::string base = group == "/" ? "" : group;
    for (const auto& name : list(group)) {
        const std::string path = base + "/" + name;
        if (out.size() + seen.size() > kMaxObjects)
            throw FormatError(where(group) + ": more than " + std::to_string(kMaxObjects) +
                              " objects");
        if (is_group(path)) {
            const haddr_t addr = object_address(file_, path);
            if (std::find(seen.begin(), seen.end(), addr) != seen.end()) continue; // a cycle
            seen.push_back(addr);
            walk(path, depth + 1, seen, out);
        } else {
            out.push_back(path);
        }
    }
}

// ---------------------------------------------------------------- writing

void H5File::write(const std::string& dataset, const Tensor& t) {
    if (t.device() != Device::CPU) throw Error("internal: writing a device tensor " + dataset);
    if (t.dtype() == DType::F32) return write_f32(dataset, t.shape(), t.f32());
    std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
    if (exists(dataset)) remove(dataset);
    const bool half = is_half(t.dtype());
    H5Id half_t = half ? half_type(t.dtype()) : H5Id();
    const hid_t stored = half ? hid_t(half_t) : H5T_STD_I32LE;
    const hid_t memory = half ? hid_t(half_t) : H5T_NATIVE_INT32;
    H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
    H5Id lcpl = lcpl_intermediate();
    H5Id d(H5Dcreate2(file_, dataset.c_str(), stored, space, lcpl, H5P_DEFAULT, H5P_DEFAULT),
           H5Dclose);
    if (d.valid()) label_dimensions(d, dataset, static_cast<int>(dims.size()));
    if (!d.valid() || (t.numel() && H5Dwrite(d, memory, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                             half ? static_cast<const void*>(t.u16())
                                                  : static_cast<const void*>(t.i32())) < 0))
        throw IoError(where(dataset) + ": write failed (disk full?)");
}

void H5File::write_f32(const std::string& dataset, const Shape& shape, const float* data) {
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    if (exists(dataset)) remove(dataset);
    H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
    H5Id lcpl = lcpl_intermediate();
    H5Id d(
        H5Dcreate2(file_, dataset.c_str(), H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT),
        H5Dclose);
    if (d.valid()) label_dimensions(d, dataset, static_cast<int>(dims.size()));
    if (!d.valid() || (shape_numel(shape) &&
                       H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
        throw IoError(where(dataset) + ": write failed (disk full?)");
}

void H5File::create_growing(const std::string& dataset, DType dtype, const Shape& row,
                            const std::vector<std::string>& dims) {
    std::vector<hsize_t> now = {0}, max = {H5S_UNLIMITED}, chunk = {1};
    for (int64_t d : row) {
        now.push_back(static_cast<hsize_t>(d));
        max.push_back(static_cast<hsize_t>(d));
        chunk.push_back(static_cast<hsize_t>(std::max<int64_t>(d, 1)));
    }
    const int rank = static_cast<int>(now.size());
    H5Id space(H5Screate_simple(rank, now.data(), max.data()), H5Sclose);
    H5Id dcpl = plist(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk.data());
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 1);
    H5Id lcpl = lcpl_intermediate();
    H5Id d(H5Dcreate2(file_, dataset.c_str(), dtype == DType::I32 ? H5T_STD_I32LE : H5T_IEEE_F32LE,
                      space, lcpl, dcpl, H5P_DEFAULT),
           H5Dclose);
    if (!d.valid()) throw IoError(where(dataset) + ": cannot create");
    label_dimensions(d, dims);
}

void H5File::set_rows(const std::string& dataset, int64_t n) {
    H5Id d(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
    Shape shape = info(dataset).shape;
    if (!d.valid() || shape.empty()) throw FormatError(where(dataset) + ": not a growing dataset");
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    dims[0] = static_cast<hsize_t>(n);
    if (H5Dset_extent(d, dims.data()) < 0)
        throw IoError(where(dataset) + ": cannot resize to " + std::to_string(n) + " rows");
}

void H5File::write_rows(const std::string& dataset, int64_t at, int64_t n, const void* data) {
    const DatasetInfo in = info(dataset);
    if (in.shape.empty()) throw FormatError(where(dataset) + ": not a growing dataset");
    if (in.shape[0] < at + n) set_rows(dataset, at + n);
    H5Id d(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
    std::vector<hsize_t> start(in.shape.size(), 0), count(in.shape.begin(), in.shape.end());
    start[0] = static_cast<hsize_t>(at);
    count[0] = static_cast<hsize_t>(n);
    H5Id file_space(H5Dget_space(d), H5Sclose);
    H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    H5Id mem(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
    const hid_t type = in.kind == ValueKind::Integer ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT;
    if (H5Dwrite(d, type, mem, file_space, H5P_DEFAULT, data) < 0)
        throw IoError(where(dataset) + ": write failed (disk full?)");
}

void H5File::flush() {
    if (H5Fflush(file_, H5F_SCOPE_GLOBAL) < 0) throw IoError(name_ + ": flush failed");
    void* handle = nullptr;
    H5Id fapl(H5Fget_access_plist(file_), H5Pclose);
    if (H5Fget_vfd_handle(file_, fapl, &handle) >= 0 && handle) fsync(*static_cast<int*>(handle));
}

H5File H5File::open_in_place(const std::string& path) {
    H5Id fapl = plist(H5P_FILE_ACCESS);
    H5AC_cache_config_t mdc;
    mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    if (H5Pget_mdc_config(fapl, &mdc) >= 0) { // dirty metadata reaches the file only when flushed
        mdc.evictions_enabled = false;
        mdc.incr_mode = H5C_incr__off;
        mdc.flash_incr_mode = H5C_flash_incr__off;
        mdc.decr_mode = H5C_decr__off;
        mdc.set_initial_size = true;
        mdc.initial_size = 16 << 20;
        mdc.max_size = std::max<size_t>(mdc.max_size, mdc.initial_size);
        H5Pset_mdc_config(fapl, &mdc);
    }
    H5File f;
    f.name_ = path;
    f.file_ = H5Handle(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl));
    if (!f.file_.valid()) throw IoError(path + ": cannot open to append to");
    return f;
}

void H5File::copy_attrs(const H5File& other, const std::string& src_obj,
                        const std::string& dst_obj) {
    H5Id src(H5Oopen(other.file_, src_obj.c_str(), H5P_DEFAULT), H5Oclose);
    H5Id dst(H5Oopen(file_, dst_obj.c_str(), H5P_DEFAULT), H5Oclose);
    if (!src.valid() || !dst.valid())
        throw FormatError(other.where(src_obj) + ": cannot copy attributes to " + where(dst_obj));
    H5O_info_t oi;
    if (H5Oget_info2(src, &oi, H5O_INFO_NUM_ATTRS) < 0)
        throw FormatError(other.where(src_obj) + ": unreadable attributes");
    for (hsize_t i = 0; i < oi.num_attrs; ++i) {
        H5Id a(H5Aopen_by_idx(src, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT),
               H5Aclose);
        if (!a.valid()) throw FormatError(other.where(src_obj) + ": unreadable attribute");
        char name[256];
        if (H5Aget_name(a, sizeof name, name) < 0)
            throw FormatError(other.where(src_obj) + ": attribute name");
        H5Id type(H5Aget_type(a), H5Tclose), space(H5Aget_space(a), H5Sclose);
        if (H5Tis_variable_str(type) > 0) { // strings through our own reader and writer
            set_attr(dst_obj, name, other.attr_str(src_obj, name));
            continue;
        }
        const size_t bytes =
            H5Tget_size(type) * static_cast<size_t>(H5Sget_simple_extent_npoints(space));
        if (bytes > (1u << 20))
            throw FormatError(other.where(src_obj) + ": attribute " + name + " too large");
        std::vector<char> buf(bytes);
        H5Id out(H5Acreate2(dst, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
        if (H5Aread(a, type, buf.data()) < 0 || !out.valid() || H5Awrite(out, type, buf.data()) < 0)
            throw IoError(where(dst_obj) + ": cannot copy attribute " + name);
    }
}

void H5File::write_strings(const std::string& dataset, const Shape& shape,
                           const std::vector<std::string>& values) {
    if (static_cast<int64_t>(values.size()) != shape_numel(shape))
        throw ShapeError(where(dataset) + ": string count does not match shape");
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    if (exists(dataset)) remove(dataset);
    H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
    H5Id type = utf8_vlen_string_type();
    H5Id lcpl = lcpl_intermediate();
    H5Id d(H5Dcreate2(file_, dataset.c_str(), type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT),
           H5Dclose);
    if (d.valid()) label_dimensions(d, dataset, static_cast<int>(dims.size()));
    std::vector<const char*> ptrs;
    ptrs.reserve(values.size());
    for (auto& s : values)
        ptrs.push_back(s.c_str());
    if (!d.valid() ||
        (!ptrs.empty() && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0))
        throw IoError(where(dataset) + ": write failed");
}

namespace {
// A scalar attribute, or an array of the given shape.
void replace_attr(hid_t file, const std::string& obj, const std::string& attr, hid_t type,
                  const void* value, const std::string& where, const Shape* shape = nullptr) {
    if (H5Aexists_by_name(file, obj.c_str(), attr.c_str(), H5P_DEFAULT) > 0)
        H5Adelete_by_name(file, obj.c_str(), attr.c_str(), H5P_DEFAULT);
    std::vector<hsize_t> dims;
    if (shape) dims.assign(shape->begin(), shape->end());
    H5Id space(shape ? H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)
                     : H5Screate(H5S_SCALAR),
               H5Sclose);
    H5Id a(H5Acreate_by_name(file, obj.c_str(), attr.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT),
           H5Aclose);
    if (!a.valid() || H5Awrite(a, type, value) < 0)
        throw IoError(where + ": cannot write attribute " + attr);
}
} // namespace

void H5File::set_attr(const std::string& obj, const std::string& attr, const std::string& value) {
    make_group(obj);
    H5Id type = utf8_vlen_string_type();
    const char* p = value.c_str();
    replace_attr(file_, obj, attr, type, &p, where(obj));
}

void H5File::set_attr(const std::string& obj, const std::string& attr, int64_t value) {
    make_group(obj);
    replace_attr(file_, obj, attr, H5T_NATIVE_INT64, &value, where(obj));
}

void H5File::set_attr(const std::string& obj, const std::string& attr, double value) {
    make_group(obj);
    replace_attr(file_, obj, attr, H5T_NATIVE_DOUBLE, &value, where(obj));
}

void H5File::set_attr(const std::string& obj, const std::string& attr, const Shape& shape,
                      const std::vector<int64_t>& values) {
    if (static_cast<int64_t>(values.size()) != shape_numel(shape))
        throw Error(where(obj) + ": attribute " + attr + " of shape " + shape_str(shape) +
                    " given " + std::to_string(values.size()) + " values");
    make_group(obj);
    replace_attr(file_, obj, attr, H5T_NATIVE_INT64, values.data(), where(obj), &shape);
}

void H5File::make_group(const std::string& group) {
    if (exists(group)) return;
    H5Id lcpl = lcpl_intermediate();
    H5Id g(H5Gcreate2(file_, group.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.valid()) throw IoError(where(group) + ": cannot create group");
}

void H5File::remove(const std::string& path) {
    if (H5Ldelete(file_, path.c_str(), H5P_DEFAULT) < 0)
        throw IoError(where(path) + ": cannot remove");
}

void H5File::copy_from(const H5File& other, const std::string& src, const std::string& dst) {
    if (exists(dst)) remove(dst);
    H5Id lcpl = lcpl_intermediate();
    if (H5Ocopy(other.file_, src.c_str(), file_, dst.c_str(), H5P_DEFAULT, lcpl) < 0)
        throw FormatError(other.where(src) + ": cannot copy into " + where(dst));
}

// ---------------------------------------------------------------- output

H5Output::H5Output(const std::string& path) : target_(path), to_stdout_(is_stdio(path)) {
    // A path that is not a file (/dev/null, a named pipe, /dev/stdout) is written to as a
    // stream, like stdout: renaming a finished file onto it would replace the device or pipe.
    struct stat st;
    const bool exists = !to_stdout_ && stat(path.c_str(), &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) throw IoError(path + ": is a directory");
    to_stream_ = to_stdout_ || (exists && !S_ISREG(st.st_mode));
    if (to_stream_) {
        if (to_stdout_ && isatty(STDOUT_FILENO))
            throw UsageError("refusing to write HDF5 to a terminal; use -o FILE or a pipe");
        if (!to_stdout_ && S_ISCHR(st.st_mode) && path.rfind("/dev/tty", 0) == 0)
            throw UsageError(path + ": refusing to write HDF5 to a terminal");
        H5Id fapl = plist(H5P_FILE_ACCESS);
        H5Pset_fapl_core(fapl, 1 << 20, 0);
        file_.name_ = to_stdout_ ? "<stdout>" : path;
        file_.file_ = H5Handle(H5Fcreate("qkv-stdout", H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
        if (!file_.file_.valid())
            throw IoError(file_.name_ + ": cannot create an in-memory HDF5 file");
        return;
    }
    std::string dir, base;
    split_path(path, dir, base);
    remove_stale_temps(dir, base);
    temp_ = dir + "/." + base + ".tmp-" + std::to_string(getpid());
    install_signal_cleanup(temp_);
    file_.name_ = path;
    file_.file_ = H5Handle(H5Fcreate(temp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    if (!file_.file_.valid()) {
        clear_signal_cleanup();
        throw IoError(path + ": cannot create (" + std::strerror(errno) + ")");
    }
}

H5Output::~H5Output() {
    if (committed_) return;
    file_.close();
    if (!temp_.empty()) unlink(temp_.c_str());
    clear_signal_cleanup();
}

void H5Output::commit() {
    if (to_stream_) {
        const std::string& name = file_.name_;
        if (H5Fflush(file_.id(), H5F_SCOPE_GLOBAL) < 0) throw IoError(name + ": flush failed");
        ssize_t n = H5Fget_file_image(file_.id(), nullptr, 0);
        if (n < 0) throw IoError(name + ": cannot serialise the HDF5 image");
        std::vector<char> image(static_cast<size_t>(n));
        if (H5Fget_file_image(file_.id(), image.data(), image.size()) < 0)
            throw IoError(name + ": cannot serialise the HDF5 image");
        file_.close();
        const int fd = to_stdout_ ? STDOUT_FILENO : ::open(target_.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) throw IoError(name + ": cannot open: " + std::strerror(errno));
        // The next stage of a pipeline reads a sealed image without checking it in another
        // process (image_seal.hpp); a file on disk stays as HDF5 wrote it.
        struct stat out;
        if (fstat(fd, &out) == 0 && !S_ISREG(out.st_mode)) seal_image(image);
        const bool ok = write_all(fd, image.data(), image.size());
        const std::string err = std::strerror(errno);
        if (!to_stdout_) ::close(fd);
        if (!ok) throw IoError(name + ": write failed: " + err);
        committed_ = true;
        return;
    }
    if (H5Fflush(file_.id(), H5F_SCOPE_GLOBAL) < 0) throw IoError(target_ + ": write failed");
    file_.close();
    int fd = ::open(temp_.c_str(), O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        ::close(fd);
    }
    if (std::rename(temp_.c_str(), target_.c_str()) != 0)
        throw IoError(target_ + ": cannot rename into place: " + std::strerror(errno));
    remember_written(target_);
    committed_ = true;
    clear_signal_cleanup();
}

} // namespace qkv
