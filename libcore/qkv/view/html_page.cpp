#include "qkv/view/html_page.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/h5file.hpp"
#include "qkv/view/colour.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace qkv {

namespace {

const char kTemplate[] =
#include "qkv/view/pattern_page.inc"
    ;

std::string base64(const std::vector<uint8_t>& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

} // namespace

std::string pattern_page(const PatternPage& p) {
    const size_t n = p.values.size();
    std::vector<uint8_t> cells(2 * n); // uint16 little-endian: 65535 masked, else weight * 65534
    for (size_t i = 0; i < n; ++i) {
        const double v = std::clamp(static_cast<double>(p.values[i]), 0.0, 1.0);
        const uint16_t u = p.masked[i] ? 65535 : static_cast<uint16_t>(std::lround(v * 65534));
        cells[2 * i] = static_cast<uint8_t>(u & 0xff);
        cells[2 * i + 1] = static_cast<uint8_t>(u >> 8);
    }
    std::vector<uint8_t> lut;
    for (int i = 0; i < 1024; ++i) {
        const Rgb c = viridis(i / 1023.0);
        lut.insert(lut.end(), {c.r, c.g, c.b});
    }
    const nlohmann::json data = {
        {"title", p.title},   {"heads", p.heads},   {"rows", p.rows},        {"cols", p.cols},
        {"tokens", p.tokens}, {"lut", base64(lut)}, {"cells", base64(cells)}};
    std::string js = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    for (size_t at = 0; (at = js.find("</", at)) != std::string::npos; at += 3)
        js.replace(at, 2, "<\\/"); // a token "</script>" cannot end the script
    std::string page = kTemplate;
    const std::string slot = "/*QKV_DATA*/";
    page.replace(page.find(slot), slot.size(), js);
    return page;
}

std::string write_html(const std::string& path, const std::string& page) {
    if (is_stdio(path)) throw UsageError("--html needs a file name");
    write_atomic(path, page.data(), page.size());
    return "wrote " + path + " (" + std::to_string(page.size() / 1024) + " KiB)\n";
}

} // namespace qkv
