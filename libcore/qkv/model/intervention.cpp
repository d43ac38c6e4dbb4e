#include "qkv/model/intervention.hpp"

#include "qkv/base/errors.hpp"

#include <algorithm>

namespace qkv {

namespace {
const char* const kSiteNames[] = {"resid_pre", "q",       "k",        "v",
                                  "pattern",   "z",       "head_out", "attn_out",
                                  "resid_mid", "mlp_pre", "mlp_post", "mlp_out"};
} // namespace

const char* site_name(Site s) {
    return kSiteNames[static_cast<int>(s)];
}

bool parse_site(const std::string& name, Site& site) {
    for (int i = 0; i < static_cast<int>(std::size(kSiteNames)); ++i)
        if (name == kSiteNames[i]) {
            site = static_cast<Site>(i);
            return true;
        }
    return false;
}

bool edits_site(const SiteEdits* edits, Site site) {
    return edits && std::any_of(edits->begin(), edits->end(),
                                [&](const SiteEdit& e) { return e.site == site; });
}

void apply_site_edits(Backend& be, const SiteEdits& edits, Site site, float* x,
                      const SiteLayout& layout, int64_t B, int64_t T, int64_t U, int64_t W,
                      int64_t first_batch) {
    for (const SiteEdit& e : edits) {
        if (e.site != site) continue;
        const Tensor& s = e.source; // [batch or 1, pos or 1, unit or 1, width]
        if (s.rank() != 4 || (s.dim(0) < first_batch + B && s.dim(0) != 1) ||
            (s.dim(1) != T && s.dim(1) != 1) || (s.dim(2) != U && s.dim(2) != 1) || s.dim(3) != W)
            throw ShapeError(std::string("internal: the source of an edit of ") + site_name(site) +
                             " has shape " + shape_str(s.shape()));
        // Strides of the source, 0 where it is broadcast.
        const int64_t su = s.dim(2) == 1 ? 0 : W, sp = s.dim(1) == 1 ? 0 : s.dim(2) * W;
        const int64_t sb = s.dim(0) == 1 ? 0 : s.dim(1) * s.dim(2) * W;
        // Every unit of a site whose units lie side by side: one row of U * W.
        if (e.units.empty() && layout.unit == W && s.dim(2) == U && U > 1) {
            SiteEdit whole{e.site,    e.positions, {},
                           e.batches, e.add,       s.reshaped({s.dim(0), s.dim(1), 1, U * W})};
            apply_site_edits(be, {whole}, site, x, {layout.batch, layout.pos, U * W}, B, T, 1,
                             U * W, first_batch);
            continue;
        }
        auto or_all = [](const std::vector<int64_t>& chosen, int64_t n) { // empty: 0 .. n - 1
            std::vector<int64_t> out = chosen;
            if (chosen.empty())
                for (int64_t i = 0; i < n; ++i)
                    out.push_back(i);
            return out;
        };
        const std::vector<int64_t> units = or_all(e.units, U), positions = or_all(e.positions, T);
        for (int64_t b = 0; b < B; ++b) {
            if (!e.batches.empty() &&
                std::find(e.batches.begin(), e.batches.end(), first_batch + b) == e.batches.end())
                continue;
            for (int64_t u : units)
                for (int64_t p : positions) {
                    float* dst = x + b * layout.batch + p * layout.pos + u * layout.unit;
                    const float* src = s.f32() + (first_batch + b) * sb + p * sp + u * su;
                    if (e.add)
                        be.add2d(dst, W, src, W, 1, W);
                    else
                        be.copy2d(dst, W, src, W, 1, W);
                }
        }
    }
}

void apply_stream_edits(Backend& be, const SiteEdits& edits, Site site, Tensor& x) {
    const int64_t B = x.dim(0), T = x.dim(1), D = x.dim(2);
    apply_site_edits(be, edits, site, x.f32(), {T * D, D, D}, B, T, 1, D);
}

} // namespace qkv
