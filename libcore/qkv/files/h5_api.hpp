// h5_api: what the HDF5 file code shares of the HDF5 C API (h5file.cpp, h5_probe.cpp): owned
// ids, property lists, the string type qkv writes, opening an in-memory image. The only header
// that includes <hdf5.h>; private to libcore/files.
#pragma once
#include <hdf5.h>

#include <string>
#include <type_traits>
#include <vector>

namespace qkv {

static_assert(std::is_same_v<hid_t, int64_t>, "H5Handle holds an hid_t as int64_t");

// An owned hid_t of any kind, closed with the right H5*close function.
class H5Id {
  public:
    H5Id() = default;
    H5Id(hid_t id, herr_t (*closer)(hid_t)) : id_(id), closer_(closer) {}
    H5Id(const H5Id&) = delete;
    H5Id& operator=(const H5Id&) = delete;
    H5Id(H5Id&& o) noexcept { *this = std::move(o); }
    H5Id& operator=(H5Id&& o) noexcept;
    ~H5Id() { reset(); }
    void reset();
    hid_t get() const { return id_; }
    operator hid_t() const { return id_; }
    bool valid() const { return id_ >= 0; }

  private:
    hid_t id_ = -1;
    herr_t (*closer_)(hid_t) = nullptr;
};

// The most bytes a string dataset's strings may claim in all before anything is read for them.
constexpr hsize_t kMaxStringBytes = hsize_t(1) << 30;

// Sets the library up the same way in every process that reads HDF5, the tools and the check
// alike: no error printing (we report errors ourselves), and no exit handler (HDF5 1.10.8's
// crashes, in H5F__close_cb, on a file whose writes failed, as on a full disk; the operating
// system reclaims what the library holds).
void configure_hdf5();

// Called after every close: when nothing of any file is left open, shuts the library down
// (it starts again by itself on the next call, and is set up again here), so that the next file
// is read by a library with no state from earlier files, as in the check's fresh process; while
// something is open, gives at least the blocks on the library's free lists back to malloc.
// The fuzzer found sixteen damaged images (tests/data/hostile-h5-sequence) that, read one after
// another in one process, make HDF5 1.10.8 read freed memory on the last; each alone reads
// cleanly, so no check of a single file could foresee it. Releasing the free lists alone is not
// enough there; a fresh library is.
void reset_hdf5_between_files();

// Whether every link on the way to path exists (each leading part looked up in turn, as
// H5Lexists needs); "/" and "" always do. The readers and the check both go through it.
bool link_path_exists(hid_t file, const std::string& path);

H5Id plist(hid_t cls);
H5Id lcpl_intermediate();
H5Id utf8_vlen_string_type();

// A string dataset's n variable-length strings (its whole extent), read in one H5Dread through
// an allocator that hands out at most kMaxStringBytes in all, so that strings claiming an
// implausible total length fail the read instead of making HDF5 allocate for them. (It replaces
// H5Dvlen_get_buf_size, which in HDF5 1.10 reads the strings one by one and clears a 1 MiB
// conversion buffer for each: 1.6 s for a 50,000-token vocabulary.) False when the read fails.
bool read_vlen_strings(hid_t dataset, hssize_t n, std::vector<std::string>& out);

// An HDF5 file from the bytes of an image (read-only; the library copies them); < 0 on failure.
hid_t open_image(const std::vector<char>& image);

} // namespace qkv
