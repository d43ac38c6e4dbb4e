#include "qkv/files/resources.hpp"

// The files are assembled into read-only data with .incbin; QKV_DATA_DIR is set by CMake.
#define QKV_STR2(x) #x
#define QKV_STR(x) QKV_STR2(x)
__asm__(
    ".section .rodata\n"
    ".balign 16\n"
    "qkv_gpt2_vocab_begin:\n"
    ".incbin \"" QKV_STR(QKV_DATA_DIR) "/gpt2/vocab.json\"\n"
                                       "qkv_gpt2_vocab_end:\n"
                                       ".balign 16\n"
                                       "qkv_gpt2_merges_begin:\n"
                                       ".incbin \"" QKV_STR(QKV_DATA_DIR) "/gpt2/merges.txt\"\n"
                                                                          "qkv_gpt2_merges_end:\n"
                                                                          ".previous\n");

extern "C" const char qkv_gpt2_vocab_begin[], qkv_gpt2_vocab_end[];
extern "C" const char qkv_gpt2_merges_begin[], qkv_gpt2_merges_end[];

namespace qkv {
std::string_view gpt2_vocab_json() {
    return {qkv_gpt2_vocab_begin, static_cast<size_t>(qkv_gpt2_vocab_end - qkv_gpt2_vocab_begin)};
}
std::string_view gpt2_merges_txt() {
    return {qkv_gpt2_merges_begin,
            static_cast<size_t>(qkv_gpt2_merges_end - qkv_gpt2_merges_begin)};
}
} // namespace qkv
