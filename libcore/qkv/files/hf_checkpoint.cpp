#include "qkv/files/hf_checkpoint.hpp"

#include "qkv/base/errors.hpp"
#include "qkv/files/model_file.hpp"

#include <nlohmann/json.hpp>
#include <sys/stat.h>

namespace qkv {

std::map<std::string, std::string> parse_safetensors_index(const std::string& json,
                                                           const std::string& where) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(json);
    } catch (const nlohmann::json::exception&) {
        throw FormatError(where + ": not valid JSON");
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        throw FormatError(where + ": expected an object with a weight_map object");
    std::map<std::string, std::string> map;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it.value().is_string())
            throw FormatError(where + ": weight_map['" + it.key() + "'] is not a file name");
        const std::string file = it.value().get<std::string>();
        if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos ||
            file.find('\0') != std::string::npos)
            throw FormatError(where + ": shard '" + file + "' is not a file name in the folder");
        map[it.key()] = file;
    }
    if (map.empty()) throw FormatError(where + ": weight_map names no tensor");
    return map;
}

CheckpointTensors CheckpointTensors::open(const std::string& dir) {
    CheckpointTensors c;
    c.dir_ = dir;
    struct stat st;
    const std::string single = dir + "/model.safetensors";
    const std::string index = dir + "/model.safetensors.index.json";
    if (stat(single.c_str(), &st) == 0) {
        c.shards_.push_back(std::make_unique<Safetensors>(Safetensors::open(single)));
        for (const auto& [name, entry] : c.shards_.back()->entries())
            c.where_[name] = c.shards_.back().get();
        return c;
    }
    if (stat(index.c_str(), &st) != 0)
        throw IoError(dir + ": holds neither model.safetensors nor model.safetensors.index.json "
                            "(only safetensors checkpoints can be imported)");
    std::map<std::string, const Safetensors*> by_file;
    for (const auto& [name, file] : parse_safetensors_index(read_whole_file(index), index)) {
        auto it = by_file.find(file);
        if (it == by_file.end()) {
            c.shards_.push_back(std::make_unique<Safetensors>(Safetensors::open(dir + "/" + file)));
            it = by_file.emplace(file, c.shards_.back().get()).first;
        }
        if (!it->second->has(name))
            throw FormatError(index + ": names '" + name + "' in " + file + ", which lacks it");
        c.where_[name] = it->second;
    }
    return c;
}

bool CheckpointTensors::has(const std::string& name) const {
    return where_.count(name) != 0;
}

Tensor CheckpointTensors::read(const std::string& name, const Shape& expected) const {
    auto it = where_.find(name);
    if (it == where_.end()) throw FormatError(dir_ + ": missing tensor '" + name + "'");
    return it->second->read(name, expected);
}

std::string CheckpointTensors::common_half_dtype() const {
    std::string common;
    for (const auto& [name, shard] : where_) {
        const std::string& d = shard->entries().at(name).dtype;
        if ((d != "F16" && d != "BF16") || (!common.empty() && d != common)) return "";
        common = d;
    }
    return common;
}

} // namespace qkv
