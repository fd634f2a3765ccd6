// collapse.h — telling a collapsed quantized fine-tune from a result (apps/): a run that ends at
// chance accuracy without a non-finite loss is reported as collapsed, naming the layer whose
// weight quantization step is largest relative to its weights (the symptom PfQ addresses: one
// outlier filter widening a layer's range until its other weights round to zero).
#pragma once
#include <string>

#include "layers/module.h"

namespace pfq::app {

// True when top-1 (percent) is no better than guessing among num_classes classes, allowing a
// fifth above chance (10 classes: <= 12%).
bool at_chance(double top1, int64_t num_classes);

// The quantized layer (QatConv2d with its BN folded, QatLinear) of a QAT model whose weight
// step is largest relative to the mean |weight| it quantizes.
struct WidestStep {
  std::string layer;         // module path; "" when no layer has a quantized weight
  int bits = 0;
  double step = 0;           // the largest per-channel step of the layer
  double mean_abs = 0;       // mean |w| (BN folded) of the layer
  double zero_fraction = 0;  // nonzero weights that quantize to 0
};
// Reads the model (its weights on any device; computed on the CPU); switches it to eval mode.
WidestStep widest_quant_step(Module& qat_model);

// "collapsed: top-1 10.00% is chance for 10 classes; widest quantization step relative to its
// weights: 'features.3.0' (3 bits, step 0.21 = 5.3x its mean |weight|, 91% of its weights
// round to 0); per-layer ranges: pfq inspect <float_checkpoint>"
std::string collapse_note(double top1, int64_t num_classes, const WidestStep& w, const std::string& float_checkpoint);

}  // namespace pfq::app
