// image_seal: how a stage tells the next stage of a pipeline that it wrote the HDF5 image on the
// pipe, so that the image need not be checked in another process (h5_probe.hpp), which costs
// more than a small stage's own work. A tool writing an image to a pipe appends a seal: an
// HMAC-SHA256 of the image under a key only this user can read ($XDG_CACHE_HOME/qkv/pipe-key,
// 32 random bytes, mode 0600, made on first use), then a magic string. A reader that finds a
// seal takes it off; when the HMAC is right the image was written by qkv for this user and is
// read without the check; otherwise (another user's seal, a forged or damaged one, no key) it is
// checked as any other input. HDF5 files on disk never carry a seal.
#pragma once
#include <vector>

namespace qkv {

// Appends the seal to an image about to be written to a pipe (nothing without a key).
void seal_image(std::vector<char>& image);

// Removes a seal from the end of image, if there is one; true when it is this user's qkv's.
bool unseal_image(std::vector<char>& image);

} // namespace qkv
