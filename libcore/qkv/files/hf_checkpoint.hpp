// hf_checkpoint: a Hugging Face checkpoint folder's weights, one model.safetensors or the shards
// that model.safetensors.index.json names, read tensor by tensor as float32.
#pragma once
#include "qkv/files/safetensors.hpp"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qkv {

// The index's weight_map (tensor name -> shard file name). Shard names are plain file names in
// the folder (no '/', not "." or ".."); anything else is a FormatError naming where.
std::map<std::string, std::string> parse_safetensors_index(const std::string& json,
                                                           const std::string& where);

class CheckpointTensors {
  public:
    static CheckpointTensors open(const std::string& dir);
    bool has(const std::string& name) const;
    // The tensor as float32 (from F32, F16 or BF16); its shape must equal expected.
    Tensor read(const std::string& name, const Shape& expected) const;
    // "F16" or "BF16" when every tensor of the checkpoint is stored so, "" otherwise.
    std::string common_half_dtype() const;

  private:
    std::string dir_;
    std::vector<std::unique_ptr<Safetensors>> shards_;
    std::map<std::string, const Safetensors*> where_; // tensor name -> its shard
};

} // namespace qkv
