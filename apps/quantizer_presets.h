// quantizer_presets.h — the named quantizer settings of `pfq reproduce`'s grid and `pfq bench
// --modes qat` (apps/): each name is a quant::QatConfig at given W/A bits. Left out: the other
// QAT options (first/last bits, calibration, stages), which the commands set themselves.
#pragma once
#include <string>
#include <vector>

#include "quant/qat.h"

namespace pfq::app {

// minmax (the paper's per-layer weights, EMA activations), per-channel (per-output-channel
// minmax weights), pact (minmax weights, PACT activations), lsq (LSQ weights and activations).
const std::vector<std::string>& quantizer_presets();
// The preset `name` at wbits / abits; throws for an unknown name.
quant::QatConfig quantizer_preset(const std::string& name, int wbits, int abits);

}  // namespace pfq::app
