#include "qkv/files/h5_walk.hpp"

#include "qkv/files/h5_api.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <vector>

namespace qkv {

namespace {

// No more values than this are read from one attribute or string dataset (the real reads refuse
// larger ones too).
constexpr hssize_t kMaxValues = hssize_t(1) << 24;
// Numbers are read from the datasets the library must decode (chunked or filtered: other
// writers'), in the walk's order, while their bytes stay within this for the file.
constexpr hsize_t kNumericBudget = hsize_t(64) << 20;
hsize_t g_numeric_read = 0;

// Reads the values of an attribute (attr set) or of a string dataset as qkv's readers would.
void read_values(hid_t obj, bool attr, hid_t type, hid_t space, hssize_t n) {
    auto read = [&](hid_t mtype, void* buf) {
        return attr ? H5Aread(obj, mtype, buf)
                    : H5Dread(obj, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    };
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING && H5Tis_variable_str(type) > 0) {
        if (!attr) { // as H5File::read_strings
            std::vector<std::string> strings;
            read_vlen_strings(obj, n, strings);
            return;
        }
        H5Id mtype = utf8_vlen_string_type();
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

void probe_attribute(hid_t a) {
    if (a < 0) return;
    H5Id type(H5Aget_type(a), H5Tclose), space(H5Aget_space(a), H5Sclose);
    if (!type.valid() || !space.valid()) return;
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n > 0 && n <= kMaxValues) read_values(a, true, type, space, n);
}

// The attributes of the object at path that qkv's readers look up by name.
void probe_attributes_by_name(hid_t file, const char* path) {
    for (const char* name : walked_attribute_names())
        if (H5Aexists_by_name(file, path, name, H5P_DEFAULT) > 0) {
            H5Id a(H5Aopen_by_name(file, path, name, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
            probe_attribute(a);
        }
}

// Every attribute of the object at path, read four ways: by each name qkv's readers look up,
// by position in both orders, and by the names the object lists (the library's failures can
// depend on the order in which its caches are filled, and a table that cannot be listed can
// still be looked up by name).
void probe_attributes(hid_t file, const char* path, hsize_t count) {
    probe_attributes_by_name(file, path);
    const hsize_t n = std::min<hsize_t>(count, 4096);
    for (H5_iter_order_t order : {H5_ITER_INC, H5_ITER_DEC})
        for (hsize_t i = 0; i < n; ++i) {
            H5Id a(H5Aopen_by_idx(file, path, H5_INDEX_NAME, order, i, H5P_DEFAULT, H5P_DEFAULT),
                   H5Aclose);
            probe_attribute(a);
        }
    for (hsize_t i = 0; i < n; ++i) {
        char name[1024];
        if (H5Aget_name_by_idx(file, path, H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                               H5P_DEFAULT) < 0)
            continue;
        if (H5Aexists_by_name(file, path, name, H5P_DEFAULT) <= 0) continue;
        H5Id a(H5Aopen_by_name(file, path, name, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
        probe_attribute(a);
    }
}

void probe_dataset(hid_t d) {
    H5Id type(H5Dget_type(d), H5Tclose), space(H5Dget_space(d), H5Sclose);
    H5Id dcpl(H5Dget_create_plist(d), H5Pclose);
    if (!type.valid() || !space.valid()) return;
    hsize_t dims[H5S_MAX_RANK];
    H5Sget_simple_extent_dims(space, dims, nullptr);
    H5Dget_storage_size(d);
    // Contiguous data without filters is copied from where the file says (qkv's readers check
    // that extent first); other layouts and filters run the library's decoding.
    bool decoded = false;
    if (dcpl.valid()) {
        const H5D_layout_t layout = H5Pget_layout(dcpl);
        decoded = layout != H5D_CONTIGUOUS || H5Pget_nfilters(dcpl) != 0;
    }
    // Strings are read; numbers that must be decoded as qkv's readers read them (float32, int32)
    // within a budget (qkv's own files hold none).
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n <= 0) return;
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING && n <= kMaxValues) read_values(d, false, type, space, n);
    const hsize_t bytes = static_cast<hsize_t>(n) * 4;
    if (decoded && (cls == H5T_FLOAT || cls == H5T_INTEGER) &&
        bytes <= kNumericBudget - g_numeric_read) {
        g_numeric_read += bytes;
        std::vector<float> buf(static_cast<size_t>(n)); // int32 has float's size
        H5Dread(d, cls == H5T_FLOAT ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32, H5S_ALL, H5S_ALL,
                H5P_DEFAULT, buf.data());
    }
}

herr_t probe_object(hid_t file, const char* name, const H5O_info_t* info, void*) {
    probe_attributes(file, name, info->num_attrs);
    if (info->type == H5O_TYPE_DATASET) {
        H5Id d(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
        if (d.valid()) probe_dataset(d);
    }
    return 0;
}

herr_t probe_link(hid_t, const char*, const H5L_info_t*, void*) {
    return 0;
}

// The groups as H5File::datasets lists them, with the same calls (exists by each path component,
// the group's link count, each link's name by position, each object opened by path, a group's
// address), since a damaged file can fail on one way of reaching an object and not on another;
// each dataset reached so is read as the readers read it (H5Ovisit stops at the first damaged
// object, and the datasets after it would not be read otherwise).
void walk_groups(hid_t file, const std::string& group, int depth, std::vector<haddr_t>& seen) {
    if (depth > 32 || seen.size() > 100000 || !link_path_exists(file, group)) return;
    H5Id g(H5Gopen2(file, group.c_str(), H5P_DEFAULT), H5Gclose);
    H5G_info_t info;
    if (!g.valid() || H5Gget_info(g, &info) < 0) return;
    const std::string base = group == "/" ? "" : group;
    for (hsize_t i = 0; i < std::min<hsize_t>(info.nlinks, 100000); ++i) {
        char name[1024];
        const ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name,
                                               sizeof name, H5P_DEFAULT);
        if (len < 0) return;
        if (static_cast<size_t>(len) >= sizeof name) continue;
        const std::string path = base + "/" + name;
        if (!link_path_exists(file, path)) continue;
        H5Id o(H5Oopen(file, path.c_str(), H5P_DEFAULT), H5Oclose);
        if (!o.valid()) continue;
        const H5I_type_t kind = H5Iget_type(o);
        if (kind != H5I_GROUP && kind != H5I_DATASET) continue;
        H5O_info_t oi;
        if (H5Oget_info_by_name2(file, path.c_str(), &oi, H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS,
                                 H5P_DEFAULT) < 0 ||
            std::find(seen.begin(), seen.end(), oi.addr) != seen.end())
            continue;
        seen.push_back(oi.addr);
        if (kind == H5I_DATASET)
            probe_object(file, path.c_str(), &oi, nullptr);
        else
            walk_groups(file, path, depth + 1, seen);
    }
}

} // namespace

const std::vector<const char*>& walked_attribute_names() {
    static const std::vector<const char*> names = {
        // every file
        "format", "version", "model_id", "history", "kind",
        // activation files
        "stage", "layer", "modified", "pad_id",
        // /tokenizer
        "normalizer", "pattern", "ignore_merges", "bos", "add_bos", "eos", "unk", "fuse_unk",
        // /config
        "arch", "n_layers", "d_model", "n_heads", "d_head", "d_mlp", "n_ctx", "vocab_size",
        "ln_eps", "act", "n_kv_heads", "norm", "positions", "rotary_dim", "rope_theta",
        "rope_scaling", "rope_factor", "rope_low_freq_factor", "rope_high_freq_factor",
        "rope_original_ctx", "gated_mlp", "biases", "qkv_bias", "parallel_residual",
        // /train
        "step", "steps", "batch", "context", "warmup", "eval_every", "eval_iters", "save_every",
        "lr", "min_lr", "weight_decay", "beta1", "beta2", "grad_clip", "val_fraction", "seed",
        "seconds", "corpus_fnv1a", "corpus_bytes", "train_tokens", "val_tokens",
        "val_nats_per_token", "val_nats_per_char", "val_chars", "tokens_per_s",
        // /store
        "sites", "window", "stride", "corpus_sha256", "windows"};
    return names;
}

void limit_walker(const char* path, const std::vector<char>* image) {
    struct stat file {};
    if (path && stat(path, &file) != 0) file.st_size = 0;
    const double bytes = image ? image->size() : static_cast<double>(file.st_size);
    double seconds = kProbeSeconds + bytes / kProbeBytesPerSecond;
    if (const char* env = std::getenv("QKV_HDF5_CHECK_SECONDS")) {
        const double v = std::strtod(env, nullptr);
        if (v >= 0.1 && v <= 3600) seconds = v;
    }
    auto timer = [](int which, int sig, double s) {
        signal(sig, SIG_DFL);
        const auto whole = static_cast<time_t>(s);
        itimerval t{{0, 0}, {whole, static_cast<suseconds_t>((s - whole) * 1e6)}};
        setitimer(which, &t, nullptr);
    };
    timer(ITIMER_PROF, SIGPROF, seconds);     // CPU time
    timer(ITIMER_REAL, SIGALRM, 4 * seconds); // wall time
    const auto cpu_seconds = static_cast<rlim_t>(seconds) + 1;
    rlimit cpu{cpu_seconds, cpu_seconds + 1};
    setrlimit(RLIMIT_CPU, &cpu);
#ifndef QKV_ASAN
    long pages = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
        std::fclose(f);
    }
    rlimit mem{};
    getrlimit(RLIMIT_AS, &mem);
    const rlim_t limit = static_cast<rlim_t>(pages) * sysconf(_SC_PAGESIZE) + kProbeMemory;
    if (mem.rlim_cur == RLIM_INFINITY || limit < mem.rlim_cur) mem.rlim_cur = limit;
    setrlimit(RLIMIT_AS, &mem);
#endif
}

namespace {

bool g_library_failed = false;

herr_t note_failure(hid_t, void*) {
    g_library_failed = true;
    return 0;
}

void walk_open_file(hid_t file) {
    H5O_info_t root;
    std::vector<haddr_t> seen;
    if (H5Oget_info_by_name2(file, "/", &root, H5O_INFO_NUM_ATTRS, H5P_DEFAULT) >= 0) {
        probe_attributes(file, "/", root.num_attrs);
        seen.push_back(root.addr);
    }
    walk_groups(file, "/", 0, seen);
    H5Lvisit(file, H5_INDEX_NAME, H5_ITER_NATIVE, probe_link, nullptr);
    H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE, probe_object, nullptr,
              H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS);
}

} // namespace

bool walk_hdf5(const char* path, const std::vector<char>* image) {
    // A forked walker has its parent's library: fresh since the parent's last close, or holding
    // the parent's open files (reset_hdf5_between_files), which are not the walker's to close.
    configure_hdf5();
    H5Eset_auto2(H5E_DEFAULT, note_failure, nullptr); // counted, not printed
    auto open = [&] {
        return H5Id(path ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : open_image(*image),
                    H5Fclose);
    };
    {
        // First what every reader does first, on a fresh open: look up the root's attributes
        // by name (format, version, ...). What the library reads, and so how it fails, depends
        // on what it read before: the whole walk alone would fill its caches in another order
        // than the tools do.
        H5Id file = open();
        if (!file.valid()) return g_library_failed;
        probe_attributes_by_name(file, "/");
    }
    H5garbage_collect(); // (a restart of the library costs 1.5 ms; the findings need none)
    {
        H5Id file = open(); // then everything, in the library's order
        if (file.valid()) walk_open_file(file);
    }
    return g_library_failed;
}

} // namespace qkv
