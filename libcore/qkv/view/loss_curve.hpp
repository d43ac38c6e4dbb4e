// loss_curve: the training log of a model file (/train/log, written by train) as a table or a
// line plot (PNG or SVG): the loss of every training batch and the held-out loss at each
// evaluation.
#pragma once
#include "qkv/files/h5file.hpp"
#include "qkv/view/surface.hpp"

#include <string>

namespace qkv {

// The log as text: the evaluations (step, lr, train loss, held-out loss) and the final figures.
std::string loss_table(const H5File& f);
// Draws the curves into path; returns the line to print.
std::string loss_picture(const H5File& f, const PictureFile& out);

} // namespace qkv
