#include "qkv/base/errors.hpp"
#include "qkv/model/sampler.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <vector>

using namespace qkv;

namespace {
// The reference distribution, computed here independently: softmax(logits / T), keep the k
// largest, then the smallest prefix whose mass reaches p, renormalised.
std::map<int, double> reference(const std::vector<float>& logits, double T, int k, double p) {
    std::vector<std::pair<double, int>> v;
    for (int i = 0; i < static_cast<int>(logits.size()); ++i)
        v.push_back({logits[i] / T, i});
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first > b.first; });
    if (k > 0) v.resize(k);
    double z = 0;
    for (auto& x : v)
        z += std::exp(x.first);
    std::vector<double> prob;
    for (auto& x : v)
        prob.push_back(std::exp(x.first) / z);
    double cum = 0;
    size_t n = 0;
    while (n < prob.size() && cum < p)
        cum += prob[n++];
    std::map<int, double> out;
    for (size_t i = 0; i < n; ++i)
        out[v[i].second] = prob[i] / cum;
    return out;
}

double total_variation(const std::map<int, double>& ref, const std::map<int, int>& counts, int n) {
    std::map<int, double> all;
    for (auto& [id, q] : ref)
        all[id] += q;
    for (auto& [id, c] : counts)
        all[id] -= double(c) / n;
    double tv = 0;
    for (auto& [id, d] : all)
        tv += std::abs(d);
    return tv / 2;
}
} // namespace

TEST_CASE("sampler: the same seed gives the same ids, greedy takes the argmax") {
    std::vector<float> logits = {0.1f, 2.0f, 1.9f, -1.0f, 0.5f};
    SamplerOptions o;
    o.seed = 99;
    Sampler a(o), b(o);
    std::vector<int> sa, sb;
    for (int i = 0; i < 50; ++i) {
        sa.push_back(a.sample(logits.data(), 5).id);
        sb.push_back(b.sample(logits.data(), 5).id);
    }
    REQUIRE(sa == sb);
    o.temperature = 0;
    Sampler g(o);
    Sample s = g.sample(logits.data(), 5);
    REQUIRE(s.id == 1);
    double z = 0;
    for (float l : logits)
        z += std::exp(l);
    REQUIRE(s.logprob == Approx(2.0 - std::log(z)));
    // ties go to the lower id
    std::vector<float> tie = {1.0f, 3.0f, 3.0f};
    REQUIRE(g.sample(tie.data(), 3).id == 1);
}

TEST_CASE("sampler: the empirical distribution matches the reference (temperature, top-k, top-p)") {
    std::vector<float> logits;
    for (int i = 0; i < 40; ++i)
        logits.push_back(static_cast<float>(std::sin(i * 1.7) * 3.0));
    struct Case {
        double T;
        int k;
        double p;
    };
    for (Case c : {Case{1.0, 0, 1.0}, Case{0.5, 0, 1.0}, Case{2.0, 10, 1.0}, Case{1.0, 0, 0.7},
                   Case{0.8, 8, 0.9}, Case{1.3, 3, 1.0}}) {
        SamplerOptions o;
        o.temperature = c.T;
        o.top_k = c.k;
        o.top_p = c.p;
        o.seed = 12345;
        Sampler s(o);
        const int n = 100000;
        std::map<int, int> counts;
        for (int i = 0; i < n; ++i)
            counts[s.sample(logits.data(), 40).id]++;
        auto ref = reference(logits, c.T, c.k, c.p);
        for (auto& [id, cnt] : counts) {
            INFO("sampled id " << id << " outside the allowed set");
            REQUIRE(ref.count(id) == 1);
        }
        const double tv = total_variation(ref, counts, n);
        INFO("T=" << c.T << " k=" << c.k << " p=" << c.p << " total variation " << tv);
        REQUIRE(tv < 0.01); // sampling noise at n = 1e5 is about 0.003
        // and the sampler's own distribution() equals the reference
        for (auto& [id, q] : s.distribution(logits.data(), 40))
            REQUIRE(q == Approx(ref[id]));
    }
}

TEST_CASE("sampler: bad options are usage errors") {
    SamplerOptions o;
    o.top_p = 0;
    REQUIRE_THROWS_AS(Sampler(o), UsageError);
    o.top_p = 1;
    o.temperature = -1;
    REQUIRE_THROWS_AS(Sampler(o), UsageError);
    o.temperature = 1;
    o.top_k = -2;
    REQUIRE_THROWS_AS(Sampler(o), UsageError);
}
