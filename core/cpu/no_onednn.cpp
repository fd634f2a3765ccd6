// no_onednn.cpp — the oneDNN entry points of conv_backend.h in a build without oneDNN:
// set_conv_backend() never selects oneDNN there, so reaching one of these is a bug.
#include "core/cpu/conv_backend.h"
#include "core/error.h"

namespace pfq::cpu::onednn {

bool conv2d_forward(const ConvGeom&, const float*, const float*, const float*, float*) {
  PFQ_FAIL("internal: oneDNN convolution called in a build without oneDNN");
}
bool conv2d_backward_input(const ConvGeom&, const float*, const float*, float*) {
  PFQ_FAIL("internal: oneDNN convolution called in a build without oneDNN");
}
bool conv2d_backward_weight(const ConvGeom&, const float*, const float*, float*) {
  PFQ_FAIL("internal: oneDNN convolution called in a build without oneDNN");
}
bool conv2d_backward(const ConvGeom&, const float*, const float*, const float*, float*, float*) {
  PFQ_FAIL("internal: oneDNN convolution called in a build without oneDNN");
}
bool can_run(const ConvGeom&) { return false; }

}  // namespace pfq::cpu::onednn
