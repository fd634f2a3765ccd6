// geometry.h — the shape structs of convolution and pooling that the ops compute once and every
// backend's kernels take (core/cpu, core/cuda, quant's kernels): plain integers, no device, no
// dtype, no tensors. Named dimensions: N batch, C input channels, H x W input map, OC output
// channels, KH x KW kernel, OH x OW output map. Leaves out the checks that build them (core/ops).
#pragma once
#include <cstdint>

namespace pfq {

// conv2d: x [N, C, H, W], w [OC, C/groups, KH, KW], b [OC], y [N, OC, OH, OW].
struct ConvGeom {
  int64_t N, C, H, W;       // input
  int64_t OC, KH, KW;       // weight (input channels per group = C / groups)
  int64_t OH, OW;           // output
  int64_t sh, sw, ph, pw, dh, dw, groups;
  // Activations (x, y and their gradients) in NHWC memory (channels-last) rather than NCHW;
  // weights stay OIHW. Only the oneDNN entry points of core/cpu/conv_backend.h take such geometries.
  bool nhwc = false;
  int64_t cg() const { return C / groups; }    // input channels per group
  int64_t ocg() const { return OC / groups; }  // output channels per group
  bool is_depthwise() const { return groups == C && OC == C && groups > 1; }
  bool is_pointwise() const { return KH == 1 && KW == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

// max/avg pooling on `planes` (= N * C) maps [H, W] -> [OH, OW]: window kh x kw, stride sh x sw,
// zero padding ph x pw (at most half the window).
struct PoolGeom {
  int64_t planes, H, W, OH, OW, kh, kw, sh, sw, ph, pw;
};

}  // namespace pfq
