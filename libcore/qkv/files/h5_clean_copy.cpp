#include "qkv/files/h5_clean_copy.hpp"

#include "qkv/files/h5_api.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace qkv {

namespace {

constexpr hsize_t kMaxAttributes = 4096;
constexpr hsize_t kMaxLinks = 100000;
constexpr int kMaxDepth = 32;
constexpr uint64_t kMaxAttributeBytes = uint64_t(1) << 28;

struct Copier {
    const char* path = nullptr; // the original on disk, or null
    uint64_t file_size = 0;
    bool by_offset = false; // large datasets referred to in the original (no user block there)
    uint64_t copied = 0;    // bytes of data copied so far (a file on disk)
    bool too_large = false;
    std::string damaged;       // the first object the library could not read ("" when none)
    std::vector<haddr_t> seen; // objects copied: links may form cycles or share an object
    bool stop() const { return too_large || !damaged.empty(); }
    void fail(const std::string& where) {
        if (damaged.empty()) damaged = where.empty() ? "/" : where;
    }
};

// An attribute of a kind qkv reads (numbers, enums, strings) goes over through memory; others
// (references, compounds, variable-length sequences) are left out.
// False when the library fails to read it.
bool copy_attribute(hid_t src, hid_t dst, hsize_t i) {
    H5Id a(H5Aopen_by_idx(src, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
    if (!a.valid()) return false;
    char name[1024];
    const ssize_t len = H5Aget_name(a, sizeof name, name);
    if (len <= 0 || static_cast<size_t>(len) >= sizeof name) return len > 0;
    H5Id type(H5Aget_type(a), H5Tclose), space(H5Aget_space(a), H5Sclose);
    if (!type.valid() || !space.valid()) return false;
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n < 0) return false;
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING && H5Tis_variable_str(type) > 0) {
        H5Id mtype = utf8_vlen_string_type();
        H5Tset_cset(mtype, H5Tget_cset(type));
        std::vector<char*> p(static_cast<size_t>(n), nullptr);
        const bool read = H5Aread(a, mtype, p.data()) >= 0;
        if (read) {
            H5Id b(H5Acreate2(dst, name, mtype, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
            if (b.valid()) H5Awrite(b, mtype, p.data());
        }
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, p.data());
        return read;
    }
    if (cls != H5T_INTEGER && cls != H5T_FLOAT && cls != H5T_STRING && cls != H5T_ENUM) return true;
    H5Id mtype(H5Tcopy(type), H5Tclose);
    const size_t size = H5Tget_size(type);
    if (!mtype.valid() || size == 0 || static_cast<uint64_t>(n) > kMaxAttributeBytes / size)
        return false;
    std::vector<char> buf(static_cast<size_t>(n) * size);
    if (H5Aread(a, mtype, buf.data()) < 0) return false;
    H5Id b(H5Acreate2(dst, name, mtype, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (b.valid()) H5Awrite(b, mtype, buf.data());
    return true;
}

void copy_attributes(Copier& c, hid_t src, hid_t dst, const std::string& where) {
    H5O_info_t info;
    if (H5Oget_info2(src, &info, H5O_INFO_NUM_ATTRS) < 0) return c.fail(where);
    for (hsize_t i = 0; i < std::min(info.num_attrs, kMaxAttributes) && !c.stop(); ++i)
        if (!copy_attribute(src, dst, i)) c.fail((where.empty() ? "/" : where) + " (an attribute)");
}

// A large contiguous dataset of numbers in a file on disk: described in the copy as stored in
// the original at its offset. False when it is not such a dataset.
bool refer_to_dataset(Copier& c, hid_t d, hid_t dcpl, hid_t type, hid_t space, hid_t dst_group,
                      const char* name, const std::string& where) {
    if (!c.by_offset || H5Pget_layout(dcpl) != H5D_CONTIGUOUS || H5Pget_nfilters(dcpl) != 0)
        return false;
    const H5T_class_t cls = H5Tget_class(type);
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    const haddr_t offset = H5Dget_offset(d);
    const uint64_t bytes = H5Dget_storage_size(d);
    if ((cls != H5T_INTEGER && cls != H5T_FLOAT) || n <= 0 || offset == HADDR_UNDEF ||
        bytes < kExternalFromBytes || bytes != static_cast<uint64_t>(n) * H5Tget_size(type) ||
        offset > c.file_size || bytes > c.file_size - offset)
        return false;
    H5Id ndcpl = plist(H5P_DATASET_CREATE);
    H5Id ntype(H5Tcopy(type), H5Tclose);
    if (H5Pset_external(ndcpl, c.path, static_cast<off_t>(offset), bytes) < 0) return false;
    H5Id nd(H5Dcreate2(dst_group, name, ntype, space, H5P_DEFAULT, ndcpl, H5P_DEFAULT), H5Dclose);
    if (!nd.valid()) return false;
    copy_attributes(c, d, nd, where);
    return true;
}

void copy_dataset(Copier& c, hid_t src_group, const char* name, hid_t dst_group,
                  const std::string& where) {
    H5Id d(H5Dopen2(src_group, name, H5P_DEFAULT), H5Dclose);
    if (!d.valid()) return c.fail(where);
    H5Id dcpl(H5Dget_create_plist(d), H5Pclose);
    H5Id type(H5Dget_type(d), H5Tclose), space(H5Dget_space(d), H5Sclose);
    if (!dcpl.valid() || !type.valid() || !space.valid()) return c.fail(where);
    const H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED && layout != H5D_COMPACT) return;
    if (H5Pget_external_count(dcpl) != 0) return; // data in other files, named by the file
    if (refer_to_dataset(c, d, dcpl, type, space, dst_group, name, where)) return;
    if (c.path) { // an image is in memory whole: what it holds fits
        c.copied += H5Dget_storage_size(d);
        if (c.copied > kMaxCleanCopyBytes && c.file_size > kMaxCleanCopyBytes) {
            c.too_large = true;
            return;
        }
    }
    if (H5Ocopy(src_group, name, dst_group, name, H5P_DEFAULT, H5P_DEFAULT) < 0) c.fail(where);
}

// where: the group's path ("" for the root).
void copy_group(Copier& c, hid_t src, hid_t dst, int depth, const std::string& where) {
    copy_attributes(c, src, dst, where);
    H5G_info_t info;
    if (depth > kMaxDepth || c.stop()) return;
    if (H5Gget_info(src, &info) < 0) return c.fail(where);
    for (hsize_t i = 0; i < std::min(info.nlinks, kMaxLinks) && !c.stop(); ++i) {
        char name[1024];
        const ssize_t len = H5Lget_name_by_idx(src, ".", H5_INDEX_NAME, H5_ITER_INC, i, name,
                                               sizeof name, H5P_DEFAULT);
        if (len < 0) return c.fail(where);
        if (len == 0 || static_cast<size_t>(len) >= sizeof name || std::strchr(name, '/') ||
            std::strcmp(name, ".") == 0)
            continue;
        const std::string path = where + "/" + name;
        H5L_info_t link;
        if (H5Lexists(src, name, H5P_DEFAULT) <= 0 ||
            H5Lget_info(src, name, &link, H5P_DEFAULT) < 0)
            return c.fail(path);
        if (link.type != H5L_TYPE_HARD) continue;
        H5O_info_t obj;
        if (H5Oget_info_by_name2(src, name, &obj, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
            return c.fail(path);
        if (std::find(c.seen.begin(), c.seen.end(), obj.addr) != c.seen.end()) continue;
        c.seen.push_back(obj.addr);
        if (obj.type == H5O_TYPE_DATASET) {
            copy_dataset(c, src, name, dst, path);
        } else if (obj.type == H5O_TYPE_GROUP) {
            H5Id from(H5Gopen2(src, name, H5P_DEFAULT), H5Gclose);
            H5Id to(H5Gcreate2(dst, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
            if (!from.valid() || !to.valid()) return c.fail(path);
            copy_group(c, from, to, depth + 1, path);
        }
    }
}

} // namespace

CleanCopyResult clean_copy(const char* path, const std::vector<char>* image,
                           std::vector<char>& out) {
    configure_hdf5();
    // (a large image would be held three times: the check's, the library's, the copy)
    if (image && image->size() > kMaxCleanCopyBytes) return CleanCopyResult::TooLarge;
    H5Id src(path ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : open_image(*image), H5Fclose);
    if (!src.valid()) return CleanCopyResult::Unopened;
    Copier c;
    if (path) {
        struct stat st;
        if (stat(path, &st) != 0) return CleanCopyResult::Unopened;
        c.path = path;
        c.file_size = static_cast<uint64_t>(st.st_size);
        H5Id fcpl(H5Fget_create_plist(src), H5Pclose);
        hsize_t user_block = 1;
        c.by_offset = fcpl.valid() && H5Pget_userblock(fcpl, &user_block) >= 0 && user_block == 0;
    }
    H5Id fapl = plist(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 20, 0);
    static std::atomic<unsigned long> copies{0};
    const std::string name = "qkv-clean-copy-" + std::to_string(++copies);
    H5Id dst(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), H5Fclose);
    H5Id from(H5Gopen2(src, "/", H5P_DEFAULT), H5Gclose);
    H5Id to(H5Gopen2(dst, "/", H5P_DEFAULT), H5Gclose);
    if (!dst.valid() || !from.valid() || !to.valid()) return CleanCopyResult::Unopened;
    copy_group(c, from, to, 0, "");
    if (c.too_large) return CleanCopyResult::TooLarge;
    if (!c.damaged.empty()) {
        out.assign(c.damaged.begin(), c.damaged.end());
        return CleanCopyResult::Damaged;
    }
    from.reset();
    to.reset();
    H5Fflush(dst, H5F_SCOPE_GLOBAL);
    const ssize_t n = H5Fget_file_image(dst, nullptr, 0);
    if (n <= 0) return CleanCopyResult::Unopened;
    out.resize(static_cast<size_t>(n));
    if (H5Fget_file_image(dst, out.data(), out.size()) != n) return CleanCopyResult::Unopened;
    return CleanCopyResult::Copied;
}

int write_clean_copy(const char* path, const std::vector<char>* image, int fd) {
    std::string absolute;
    if (path) {
        char* real = realpath(path, nullptr);
        if (!real) return kCheckUnopened;
        absolute = real;
        std::free(real);
    }
    std::vector<char> out;
    int status = kCheckCopied;
    switch (clean_copy(path ? absolute.c_str() : nullptr, image, out)) {
    case CleanCopyResult::Unopened:
        return kCheckUnopened;
    case CleanCopyResult::TooLarge:
        return kCheckTooLarge;
    case CleanCopyResult::Damaged:
        status = kCheckDamaged;
        break;
    case CleanCopyResult::Copied:
        break;
    }
    for (size_t off = 0; off < out.size();) {
        const ssize_t w = ::write(fd, out.data() + off, out.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return kCheckUnopened;
        off += static_cast<size_t>(w);
    }
    return status;
}

} // namespace qkv
