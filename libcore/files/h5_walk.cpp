#include "files/h5_walk.hpp"

#include "files/h5_api.hpp"

#include <csignal>
#include <cstdio>
#include <sys/resource.h>
#include <unistd.h>

// Under AddressSanitizer the address space is not limited: it reserves terabytes of it.
#if defined(__SANITIZE_ADDRESS__)
#define QKV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QKV_ASAN 1
#endif
#endif

namespace qkv {

namespace {

// No more values than this are read from one attribute or string dataset (the real reads refuse
// larger ones too).
constexpr hssize_t kMaxValues = hssize_t(1) << 24;

// Reads the values of an attribute (attr set) or of a string dataset as qkv's readers would.
void read_values(hid_t obj, bool attr, hid_t type, hid_t space, hssize_t n) {
    auto read = [&](hid_t mtype, void* buf) {
        return attr ? H5Aread(obj, mtype, buf)
                    : H5Dread(obj, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    };
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING && H5Tis_variable_str(type) > 0) {
        H5Id mtype = utf8_vlen_string_type();
        if (!attr) { // as H5File::read_strings: the total length first
            hsize_t total = 0;
            if (H5Dvlen_get_buf_size(obj, mtype, space, &total) < 0 || total > (hsize_t(1) << 30))
                return;
        }
        std::vector<char*> p(static_cast<size_t>(n), nullptr);
        if (read(mtype, p.data()) >= 0) H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, p.data());
    } else if (cls == H5T_STRING) {
        const size_t size = H5Tget_size(type);
        if (size == 0 || size > (size_t(1) << 28) / static_cast<size_t>(n)) return;
        std::vector<char> buf(size * static_cast<size_t>(n));
        read(type, buf.data());
    } else if (attr && (cls == H5T_INTEGER || cls == H5T_FLOAT)) {
        std::vector<double> buf(static_cast<size_t>(n));
        read(H5T_NATIVE_DOUBLE, buf.data());
    }
}

herr_t probe_attribute(hid_t loc, const char* name, const H5A_info_t*, void*) {
    H5Id a(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
    if (!a.valid()) return 0;
    H5Id type(H5Aget_type(a), H5Tclose), space(H5Aget_space(a), H5Sclose);
    if (!type.valid() || !space.valid()) return 0;
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n > 0 && n <= kMaxValues) read_values(a, true, type, space, n);
    return 0;
}

void probe_dataset(hid_t d) {
    H5Id type(H5Dget_type(d), H5Tclose), space(H5Dget_space(d), H5Sclose);
    H5Id dcpl(H5Dget_create_plist(d), H5Pclose);
    if (!type.valid() || !space.valid()) return;
    hsize_t dims[H5S_MAX_RANK];
    H5Sget_simple_extent_dims(space, dims, nullptr);
    H5Dget_storage_size(d);
    if (dcpl.valid()) {
        H5Pget_layout(dcpl);
        H5Pget_nfilters(dcpl);
    }
    // Numeric values are not read here (a model's weights would be read twice); strings are.
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    if (H5Tget_class(type) == H5T_STRING && n > 0 && n <= kMaxValues)
        read_values(d, false, type, space, n);
}

herr_t probe_object(hid_t root, const char* name, const H5O_info_t* info, void*) {
    H5Id o(H5Oopen(root, name, H5P_DEFAULT), H5Oclose);
    if (!o.valid()) return 0;
    H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr, probe_attribute, nullptr);
    if (info->type == H5O_TYPE_DATASET) probe_dataset(o);
    return 0;
}

herr_t probe_link(hid_t, const char*, const H5L_info_t*, void*) {
    return 0;
}

} // namespace

void limit_walker() {
    signal(SIGALRM, SIG_DFL);
    alarm(kProbeSeconds);
    rlimit cpu{kProbeSeconds, kProbeSeconds + 1};
    setrlimit(RLIMIT_CPU, &cpu);
#ifndef QKV_ASAN
    long pages = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
        std::fclose(f);
    }
    const rlim_t limit = static_cast<rlim_t>(pages) * sysconf(_SC_PAGESIZE) + kProbeMemory;
    rlimit mem{limit, limit};
    setrlimit(RLIMIT_AS, &mem);
#endif
}

void walk_hdf5(const char* path, const std::vector<char>* image) {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); // the library's errors are not the walk's
    H5Id file(path ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : open_image(*image), H5Fclose);
    if (!file.valid()) return;
    H5Lvisit(file, H5_INDEX_NAME, H5_ITER_NATIVE, probe_link, nullptr);
    H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE, probe_object, nullptr,
              H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS);
}

} // namespace qkv
