#include "qkv/files/h5_api.hpp"

#include <atomic>
#include <cstdlib>
#include <string>

namespace qkv {

H5Id& H5Id::operator=(H5Id&& o) noexcept {
    if (this != &o) {
        reset();
        id_ = o.id_;
        closer_ = o.closer_;
        o.id_ = -1;
    }
    return *this;
}

void H5Id::reset() {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = -1;
}

void configure_hdf5() {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

void reset_hdf5_between_files() {
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) {
        H5garbage_collect();
        return;
    }
    H5close();
    configure_hdf5();
}

bool link_path_exists(hid_t file, const std::string& path) {
    for (size_t pos = path.find('/', 1);; pos = path.find('/', pos + 1)) {
        const std::string part = path.substr(0, pos);
        if (part != "/" && !part.empty() && H5Lexists(file, part.c_str(), H5P_DEFAULT) <= 0)
            return false;
        if (pos == std::string::npos) return true;
    }
}

H5Id plist(hid_t cls) {
    return H5Id(H5Pcreate(cls), H5Pclose);
}

H5Id lcpl_intermediate() {
    H5Id p = plist(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(p, 1);
    return p;
}

H5Id utf8_vlen_string_type() {
    H5Id t(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

namespace {
struct VlenBudget {
    hsize_t used = 0;
    static void* alloc(size_t size, void* info) {
        auto* b = static_cast<VlenBudget*>(info);
        if (size > kMaxStringBytes - b->used) return nullptr; // the read fails
        b->used += size;
        return std::malloc(size);
    }
    static void release(void* p, void*) { std::free(p); }
};
} // namespace

bool read_vlen_strings(hid_t dataset, hssize_t n, std::vector<std::string>& out) {
    VlenBudget budget;
    H5Id dxpl = plist(H5P_DATASET_XFER);
    H5Pset_vlen_mem_manager(dxpl, VlenBudget::alloc, &budget, VlenBudget::release, nullptr);
    H5Id mtype = utf8_vlen_string_type();
    H5Id space(H5Dget_space(dataset), H5Sclose);
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    const bool ok = H5Dread(dataset, mtype, H5S_ALL, H5S_ALL, dxpl, ptrs.data()) >= 0;
    if (ok) {
        out.reserve(out.size() + ptrs.size());
        for (char* p : ptrs)
            out.emplace_back(p ? p : "");
    }
    H5Dvlen_reclaim(mtype, space, dxpl, ptrs.data()); // what a failed read did allocate, too
    return ok;
}

hid_t open_image(const std::vector<char>& image) {
    H5Id fapl = plist(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 20, 0);
    if (H5Pset_file_image(fapl, const_cast<char*>(image.data()), image.size()) < 0) return -1;
    // The name only labels the in-memory file; it must not be a path HDF5 could open itself,
    // and it differs for every image: HDF5 takes an open of a name it still holds open as an
    // open of the same file.
    static std::atomic<unsigned long> images{0};
    const std::string name = "qkv-in-memory-image-" + std::to_string(++images);
    return H5Fopen(name.c_str(), H5F_ACC_RDONLY, fapl);
}

} // namespace qkv
