// h5file: a thin RAII layer over the HDF5 C API (whose header only h5file.cpp includes). Files come
// from a path or stdin (read into an in-memory file image); outputs go to a temporary file renamed
// into place on commit(), or to stdout through an in-memory image. Every error names the file and
// the dataset.
#pragma once
#include "qkv/files/h5_probe.hpp"
#include "qkv/tensor/tensor.hpp"

#include <functional>
#include <string>
#include <vector>

namespace qkv {

// An open HDF5 file's id (an hid_t), closed when it goes.
class H5Handle {
  public:
    H5Handle() = default;
    explicit H5Handle(int64_t id) : id_(id) {}
    H5Handle(const H5Handle&) = delete;
    H5Handle& operator=(const H5Handle&) = delete;
    H5Handle(H5Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
    H5Handle& operator=(H5Handle&& o) noexcept {
        if (this != &o) {
            reset();
            id_ = o.id_;
            o.id_ = -1;
        }
        return *this;
    }
    ~H5Handle() { reset(); }
    void reset();
    operator int64_t() const { return id_; }
    bool valid() const { return id_ >= 0; }

  private:
    int64_t id_ = -1;
};

// What a dataset's values are, as far as qkv reads them.
enum class ValueKind { Float, Integer, String, Other };

// Information about one dataset, read without reading its data.
struct DatasetInfo {
    Shape shape;
    ValueKind kind = ValueKind::Other;
    size_t type_size = 0;
    DType half = DType::F32; // F16 or BF16: a float of IEEE half's or bfloat16's 16-bit layout
};

// An HDF5 file open for reading (or, for an output, the file being written).
class H5File {
  public:
    H5File() = default;
    // path "" or "-" means standard input.
    static H5File open_read(const std::string& path);
    static H5File from_image(std::vector<char> image, const std::string& name);

    const std::string& name() const { return name_; } // for messages ("<stdin>" for stdin)
    int64_t id() const { return file_; }              // the HDF5 id (hid_t)
    bool valid() const { return file_.valid(); }

    bool exists(const std::string& path) const; // a link at path (intermediate groups too)
    DatasetInfo info(const std::string& dataset) const;
    // Reads a float dataset as float32; rank checked when expected_rank >= 0.
    Tensor read_f32(const std::string& dataset, int expected_rank = -1) const;
    // Its dimensions' labels (dimension_names.hpp), "" for a dimension without one.
    std::vector<std::string> dimension_labels(const std::string& dataset) const;
    // Reads into caller-provided memory of exactly the dataset's size.
    void read_f32_into(const std::string& dataset, const Shape& expected, float* out) const;
    // A float dataset of the expected shape as it is stored: F16 or BF16 bits when it is one of
    // those 16-bit layouts (and keep_half), float32 otherwise.
    Tensor read_floats_as_stored(const std::string& dataset, const Shape& expected,
                                 bool keep_half) const;
    // Rows [row0, row0 + n) of a 2-D float dataset of cols columns into out, as type (F32, or
    // the dataset's own 16-bit layout: info().half).
    void read_rows(const std::string& dataset, int64_t row0, int64_t n, int64_t cols, DType type,
                   void* out) const;
    Tensor read_i32(const std::string& dataset, int expected_rank = -1) const;
    std::vector<std::string> read_strings(const std::string& dataset) const;

    bool has_attr(const std::string& obj, const std::string& attr) const;
    std::string attr_str(const std::string& obj, const std::string& attr) const;
    int64_t attr_int(const std::string& obj, const std::string& attr) const;
    double attr_double(const std::string& obj, const std::string& attr) const;
    // The same by the type of value (for tables of fields, base/fields.hpp).
    void get_attr(const std::string& obj, const std::string& attr, std::string& value) const {
        value = attr_str(obj, attr);
    }
    void get_attr(const std::string& obj, const std::string& attr, int64_t& value) const {
        value = attr_int(obj, attr);
    }
    void get_attr(const std::string& obj, const std::string& attr, double& value) const {
        value = attr_double(obj, attr);
    }
    std::vector<std::string> list(const std::string& group) const; // member names
    bool is_group(const std::string& path) const;
    // Every dataset below group, depth first, as absolute paths.
    std::vector<std::string> datasets(const std::string& group = "/") const;

    // Writing (files made by H5Output). A tensor is stored in its own type: F16 as IEEE half
    // (h5py reads it as float16), BF16 as a 16-bit float of bfloat16's layout (h5py:
    // dataset.astype("f4") lets HDF5 widen it; numpy has no bfloat16).
    void write(const std::string& dataset, const Tensor& t);
    void write_f32(const std::string& dataset, const Shape& shape, const float* data);
    // Copies every attribute of other's object src_obj onto this file's dst_obj.
    void copy_attrs(const H5File& other, const std::string& src_obj, const std::string& dst_obj);
    void write_strings(const std::string& dataset, const Shape& shape,
                       const std::vector<std::string>& values);
    void set_attr(const std::string& obj, const std::string& attr, const std::string& value);
    void set_attr(const std::string& obj, const std::string& attr, int64_t value);
    void set_attr(const std::string& obj, const std::string& attr, double value);
    // An int64 array attribute (h5py: a numpy array).
    void set_attr(const std::string& obj, const std::string& attr, const Shape& shape,
                  const std::vector<int64_t>& values);
    void make_group(const std::string& group);
    void remove(const std::string& path);

    // Datasets that grow by rows along their first dimension (activation stores): chunked a row
    // at a time, gzip-compressed (with the shuffle filter), unlimited in length; dims their
    // dimension labels. int32 or float32.
    void create_growing(const std::string& dataset, DType dtype, const Shape& row,
                        const std::vector<std::string>& dims);
    // Writes n rows at row `at` (the dataset extended to at + n when shorter).
    void write_rows(const std::string& dataset, int64_t at, int64_t n, const void* data);
    // Cuts (or extends) the dataset to n rows.
    void set_rows(const std::string& dataset, int64_t n);
    // Writes everything the library holds for the file to it (H5Fflush), then to the disk.
    void flush();
    // An existing file opened to be changed in place, not atomically (activation stores, which
    // keep their own count of what is complete). The library writes its metadata only when
    // flushed (no evictions of dirty metadata between flushes).
    static H5File open_in_place(const std::string& path);
    // Copies object src_path of other into this file at dst_path.
    void copy_from(const H5File& other, const std::string& src_path, const std::string& dst_path);

    void close() { file_.reset(); }

  private:
    friend class H5Output;
    friend class H5Input;
    void read_floats(const std::string& dataset, const DatasetInfo& in,
                     const std::function<float*()>& allocate) const;
    void walk(const std::string& group, int depth, std::vector<uint64_t>& seen,
              std::vector<std::string>& out) const;
    std::string where(const std::string& obj) const; // "file.h5:/resid"
    std::string name_;
    H5Handle file_;
    bool clean_copy_ = false; // opened from the check's clean copy (h5_probe.hpp)
};

// An HDF5 input opened in two steps, so that the tool can work while the file is checked
// (h5_probe.hpp): start() reads stdin or a pipe whole and starts the check in a child process;
// open() waits for its verdict and opens the file. H5File::open_read(path) is the two at once.
class H5Input {
  public:
    static H5Input start(const std::string& path); // "" or "-": stdin
    static H5Input start_image(std::vector<char> image, const std::string& name);
    H5File open();

  private:
    std::string name_, path_; // path_ empty for an image
    std::vector<char> image_;
    Probe probe_;
};

// A file being written. Nothing appears under the target name unless commit() succeeds.
class H5Output {
  public:
    // path "" or "-" means stdout (refused when stdout is a terminal).
    explicit H5Output(const std::string& path);
    ~H5Output(); // removes the temporary file when not committed
    H5Output(const H5Output&) = delete;
    H5Output& operator=(const H5Output&) = delete;

    H5File& file() { return file_; }
    void commit();

  private:
    std::string target_, temp_;
    bool to_stdout_ = false, to_stream_ = false, committed_ = false; // stream: stdout, a device,
                                                                     // a named pipe
    H5File file_;
};

// How many HDF5 files and objects this process holds open (0 once every H5File is gone).
size_t open_hdf5_objects();

// Throws UsageError when out would overwrite in (the same file).
void check_not_same_file(const std::string& in, const std::string& out);
bool is_stdio(const std::string& path);
// Reads all of a stream (stdin when path is "-"/"") into memory.
std::vector<char> read_all(const std::string& path);
// Writes bytes to path atomically (temporary file in the same folder, fsync, rename).
void write_atomic(const std::string& path, const void* data, size_t n);

} // namespace qkv
