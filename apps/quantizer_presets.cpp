// quantizer_presets.cpp — the quantizer presets (apps/quantizer_presets.h): each name as the
// QatConfig fields it changes from QatConfig's defaults.
#include "apps/quantizer_presets.h"

#include "core/error.h"

namespace pfq::app {

const std::vector<std::string>& quantizer_presets() {
  static const std::vector<std::string> names = {"minmax", "per-channel", "pact", "lsq"};
  return names;
}

quant::QatConfig quantizer_preset(const std::string& name, int wbits, int abits) {
  quant::QatConfig c;  // minmax weights per layer, EMA activations, BN folded (docs/method.md 4.3)
  c.wbits = wbits;
  c.abits = abits;
  if (name == "minmax") return c;
  if (name == "per-channel") {
    c.per_channel = true;
    return c;
  }
  if (name == "pact") {  // Choi et al. 2018 quantize weights with DoReFa, whose [-1, 1] output does not fit BN folding
    c.aquant = "pact";
    return c;
  }
  if (name == "lsq") {  // Esser et al. 2020: learned step sizes for weights and activations
    c.wquant = "lsq";
    c.aquant = "lsq";
    return c;
  }
  PFQ_FAIL("reproduce: unknown quantizer preset '", name, "'; expected one of minmax, per-channel, pact, lsq");
}

}  // namespace pfq::app
