// dimension_names: the names of the dimensions of the datasets qkv writes, as qkv-files(5)
// documents them (batch, pos, head, kv_head, d_head, d_model, d_mlp, vocab, query_pos, key_pos,
// ...): a weight's from the model's schema, anything else's from the table here. H5File labels
// each dataset it creates with them (HDF5 dimension labels, h5py's .dims[i].label).
#pragma once
#include <string>
#include <vector>

namespace qkv {

// The names for a dataset of that rank, or none (a dataset qkv does not name, or another rank).
std::vector<std::string> dimension_names(const std::string& dataset, int rank);

// Labels the dimensions of the open dataset id (an hid_t) named dataset, of that rank, with
// its names (the HDF5 high-level library's dimension labels, H5DSset_label).
void label_dimensions(int64_t id, const std::string& dataset, int rank);
// The same with the names given.
void label_dimensions(int64_t id, const std::vector<std::string>& names);

// The dimension labels the open dataset id (an hid_t) of that rank carries, "" where one has
// none (a file of any writer: h5py's .dims[i].label = ...).
std::vector<std::string> read_dimension_labels(int64_t id, int rank);

} // namespace qkv
