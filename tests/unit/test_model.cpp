#include "qkv/base/errors.hpp"
#include "qkv/files/activations.hpp"
#include "qkv/files/hf_import.hpp"
#include "qkv/files/model_file.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace qkv;

TEST_CASE("model: presets have GPT-2's sizes") {
    Config g = preset_config("gpt2");
    REQUIRE((g.n_layers == 12 && g.d_model == 768 && g.n_heads == 12 && g.d_head == 64 &&
             g.d_mlp == 3072 && g.n_ctx == 1024 && g.vocab_size == 50257));
    Config xl = preset_config("gpt2-xl");
    REQUIRE((xl.n_layers == 48 && xl.d_model == 1600 && xl.n_heads == 25 && xl.d_head == 64));
    REQUIRE(preset_config("gpt2-large").n_layers == 36);
    REQUIRE(preset_config("gpt2-medium").d_model == 1024);
    REQUIRE_THROWS_AS(preset_config("gpt5"), UsageError);
}

TEST_CASE("model: the built-in GPT-2 tokenizer data") {
    TokenizerData t = gpt2_tokenizer_data();
    REQUIRE(t.vocab.size() == 50257);
    REQUIRE(t.merges.size() == 50000);
    REQUIRE(t.vocab[15496] == "Hello");
    REQUIRE(t.vocab[50256] == "<|endoftext|>");
    REQUIRE(t.merges[0] == "\xc4\xa0 t"); // "Ġ t"
    REQUIRE_THROWS_AS(tokenizer_data_from_text("{\"a\": 1}", "", "x"), FormatError);
    REQUIRE_THROWS_AS(tokenizer_data_from_text("[1]", "", "x"), FormatError);
}

TEST_CASE("model: init is deterministic, loading fuses W_Q, W_K, W_V by head") {
    ModelInitOptions o;
    o.preset = "tiny";
    o.seed = 5;
    o.output = "unit_model_a.h5";
    const std::string id_a = model_init(o);
    o.output = "unit_model_b.h5";
    const std::string id_b = model_init(o);
    o.seed = 6;
    o.output = "unit_model_c.h5";
    const std::string id_c = model_init(o);
    REQUIRE(id_a == id_b);
    REQUIRE(id_a != id_c);
    REQUIRE(id_a.rfind("tiny-", 0) == 0);

    ModelFile m = ModelFile::open("unit_model_a.h5");
    REQUIRE(m.model_id() == id_a);
    const Config& c = m.config();
    auto be = make_cpu_backend(1);
    AttentionWeights w = m.load_attention(1, *be);
    Tensor W_K = m.h5().read_f32("/blocks/1/attn/W_K"); // [head, d_model, d_head]
    const int64_t HD = c.n_heads * c.d_head;
    for (int64_t h = 0; h < c.n_heads; ++h)
        for (int64_t i = 0; i < c.d_model; i += 7)
            for (int64_t j = 0; j < c.d_head; ++j)
                REQUIRE(w.W_QKV.f32()[i * 3 * HD + HD + h * c.d_head + j] ==
                        W_K.f32()[(h * c.d_model + i) * c.d_head + j]);
    REQUIRE_THROWS_WITH(m.load_attention(2, *be), Catch::Contains("out of range"));
    REQUIRE_THROWS_WITH(ModelFile::open("no-such-model.h5"), Catch::Contains("no-such-model.h5"));
    for (auto* f : {"unit_model_a.h5", "unit_model_b.h5", "unit_model_c.h5"})
        std::remove(f);
}

TEST_CASE("activations: stage order") {
    Activations a;
    a.stage = Stage::Embed;
    REQUIRE_NOTHROW(check_order(a, Stage::Attn, 0, false));
    REQUIRE_THROWS_AS(check_order(a, Stage::Attn, 1, false), ShapeError);
    REQUIRE_THROWS_AS(check_order(a, Stage::Mlp, 0, false), ShapeError);
    REQUIRE_NOTHROW(check_order(a, Stage::Mlp, 0, true));
    a.stage = Stage::Attn;
    a.layer = 3;
    REQUIRE_NOTHROW(check_order(a, Stage::Mlp, 3, false));
    REQUIRE_THROWS_AS(check_order(a, Stage::Attn, 4, false), ShapeError);
    a.stage = Stage::Mlp;
    REQUIRE_NOTHROW(check_order(a, Stage::Attn, 4, false));
    REQUIRE_THROWS_AS(check_order(a, Stage::Embed, -1, false), ShapeError);
    REQUIRE(parse_stage("logits", "x") == Stage::Logits);
    REQUIRE_THROWS_AS(parse_stage("nope", "x"), FormatError);
}

TEST_CASE("model: import refuses a config.json that is not an object (fuzz regression)") {
    const std::string dir = "unit_import_regress";
    mkdir(dir.c_str(), 0755);
    {
        std::ifstream in(QKV_TEST_DATA "/regress/import-config-not-an-object.json",
                         std::ios::binary);
        std::ofstream out(dir + "/config.json", std::ios::binary);
        out << in.rdbuf();
    }
    ModelImportOptions o;
    o.from_dir = dir;
    o.output = dir + "/out.h5";
    REQUIRE_THROWS_AS(model_import(o), FormatError);
    {
        std::ofstream out(dir + "/config.json");
        out << R"({"model_type": 5})";
    }
    REQUIRE_THROWS_WITH(model_import(o), Catch::Contains("'model_type' must be a string"));
    std::remove((dir + "/config.json").c_str());
    rmdir(dir.c_str());
}
