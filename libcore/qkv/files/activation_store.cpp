#include "qkv/files/activation_store.hpp"

#include "qkv/base/errors.hpp"

#include <cstdio>
#include <openssl/sha.h>
#include <sys/stat.h>

namespace qkv {

namespace {

std::string site_path(const StoreSite& s) {
    return "/store/" + std::to_string(s.layer) + "/" + s.name;
}

std::string sites_text(const StoreSpec& spec) { // "6.resid_pre,7.resid_pre"
    std::string t;
    for (auto& s : spec.sites)
        t += (t.empty() ? "" : ",") + std::to_string(s.layer) + "." + s.name;
    return t;
}

// What differs between the store and the spec ("" when nothing).
std::string difference(const H5File& f, const StoreSpec& spec) {
    auto str = [&](const char* obj, const char* a) {
        return f.has_attr(obj, a) ? f.attr_str(obj, a) : std::string("(none)");
    };
    auto num = [&](const char* a) {
        return f.has_attr("/store", a) ? f.attr_int("/store", a) : -1;
    };
    if (str("/", "format") != "qkv-store") return "not an activation store (format)";
    if (str("/", "model_id") != spec.model_id)
        return "model " + str("/", "model_id") + ", not " + spec.model_id;
    if (str("/store", "sites") != sites_text(spec))
        return "sites " + str("/store", "sites") + ", not " + sites_text(spec);
    if (num("window") != spec.window || num("stride") != spec.stride)
        return "window " + std::to_string(num("window")) + " stride " +
               std::to_string(num("stride")) + ", not " + std::to_string(spec.window) + " and " +
               std::to_string(spec.stride);
    const Tensor kept = f.read_i32("/store/positions", 1);
    if (std::vector<int32_t>(kept.i32(), kept.i32() + kept.numel()) != spec.positions)
        return "other positions (/store/positions)";
    if (str("/store", "corpus_sha256") != spec.corpus)
        return "another corpus (--append continues a run over the same text)";
    for (auto& s : spec.sites)
        if (!f.exists(site_path(s)) || f.info(site_path(s)).shape.size() != s.row.size() + 1 ||
            !std::equal(s.row.begin(), s.row.end(), f.info(site_path(s)).shape.begin() + 1))
            return site_path(s) + " of another shape";
    return "";
}

void create(const std::string& path, const StoreSpec& spec) {
    H5Output out(path);
    H5File& f = out.file();
    f.set_attr("/", "format", std::string("qkv-store"));
    f.set_attr("/", "version", int64_t{1});
    f.set_attr("/", "model_id", spec.model_id);
    f.set_attr("/store", "sites", sites_text(spec));
    f.set_attr("/store", "window", spec.window);
    f.set_attr("/store", "stride", spec.stride);
    f.set_attr("/store", "corpus_sha256", spec.corpus);
    f.set_attr("/store", "windows", int64_t{0});
    Tensor kept = Tensor::zeros({static_cast<int64_t>(spec.positions.size())}, DType::I32);
    std::copy(spec.positions.begin(), spec.positions.end(), kept.i32());
    f.write("/store/positions", kept);
    f.create_growing("/store/tokens", DType::I32, {spec.window}, {"window", "pos"});
    for (auto& s : spec.sites)
        f.create_growing(site_path(s), DType::F32, s.row, s.dims);
    out.commit();
}

} // namespace

std::string corpus_digest(const int32_t* tokens, int64_t n) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(tokens), static_cast<size_t>(n) * 4, d);
    std::string hex;
    char b[3];
    for (unsigned char c : d) {
        std::snprintf(b, sizeof b, "%02x", c);
        hex += b;
    }
    return hex;
}

ActivationStore ActivationStore::open(const std::string& path, const StoreSpec& spec) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) create(path, spec);
    {
        // As any input: checked first (files/h5_probe.hpp), then compared, still read-only.
        H5File f = H5File::open_read(path);
        const std::string why = difference(f, spec);
        if (!why.empty()) throw FormatError(path + ": --append to a store of " + why);
    }
    ActivationStore s;
    s.file_ = H5File::open_in_place(path);
    s.spec_ = spec;
    s.windows_ = s.file_.attr_int("/store", "windows");
    // Rows past the count: a run killed in the middle of a batch.
    s.file_.set_rows("/store/tokens", s.windows_);
    for (auto& site : spec.sites)
        s.file_.set_rows(site_path(site), s.windows_);
    s.file_.flush();
    return s;
}

void ActivationStore::append(int64_t n, const int32_t* tokens,
                             const std::vector<const float*>& sites) {
    file_.write_rows("/store/tokens", windows_, n, tokens);
    for (size_t i = 0; i < spec_.sites.size(); ++i)
        file_.write_rows(site_path(spec_.sites[i]), windows_, n, sites[i]);
    file_.flush(); // the rows on disk first, then the count that says they are complete
    windows_ += n;
    file_.set_attr("/store", "windows", windows_);
    file_.flush();
}

} // namespace qkv
