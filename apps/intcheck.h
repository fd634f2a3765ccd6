// intcheck.h — the integer check of a fine-tuned QAT checkpoint (issue #4 items 5-6): export it
// as an integer model file (quant/integer/model.h, docs/integer-format.md) and run that file on
// CPU over a test set, reporting its top-1 and, given the QAT checkpoint, the agreement of its
// predictions with the fake-quantized float model. Behind `pfq export`, `pfq intcheck` and the
// workflow's intcheck stage. Left out: CUDA (the integer model is CPU only).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/run_options.h"

namespace pfq::app {

struct ExportResult {
  std::string path;
  std::string summary;   // IntModel::summary()
  double size_kib = 0;   // quant::model_size of the QAT model
};
// Loads a QAT checkpoint (pfq finetune output), converts it and writes `out`.
ExportResult export_integer(const std::string& qat_checkpoint, const std::string& out);

// The test split of the data group (apps/run_options.h) in batches of batch_size (256 unless set).
struct IntCheckOptions : DataOptions {
  IntCheckOptions() { batch_size = 256; }
  std::string model;           // integer model file (pfq export)
  std::string qat_checkpoint;  // optional: compare with the fake-quantized model
  bool reference = false;      // naive conv loops instead of im2col
  // Also run the fake-quantized model in float64 and report the three pairwise agreements:
  // separates float32 rounding (near quantization ties) from the integer arithmetic.
  bool fq_float64 = false;
  // Compare the integer model's code at every quantize/requant node with the fake-quantized
  // model's at the same quantizer (needs qat_checkpoint): where, and by how many steps, they differ.
  bool trace_layers = false;
  bool quiet = false;
};

// One quantizer's comparison (trace_layers): codes of the integer model against the codes the
// fake-quantized model's output maps to (round(x / scale) + zero_point).
struct LayerAgreement {
  std::string name;
  int64_t elements = 0;
  int64_t differ = 0;      // elements whose codes differ
  int64_t max_steps = 0;   // largest |code difference|
  int64_t images_differ = 0;  // images with at least one differing element here
};

struct IntCheckResult {
  int64_t images = 0;
  double int_top1 = 0;
  double fq_top1 = -1;     // -1 without a QAT checkpoint
  double agreement = -1;   // % of images whose predicted class is the same in both models
  double max_abs_logit_diff = -1;
  // With fq_float64 (else -1): top-1 of the float64 fake-quantized model and the agreement of
  // its predictions with the integer model's and with the float32 fake-quantized model's.
  double fq64_top1 = -1, agreement_int_fq64 = -1, agreement_fq32_fq64 = -1;
  std::vector<LayerAgreement> layers;  // trace_layers: in graph order
  nlohmann::json to_json() const;
};
IntCheckResult run_intcheck(const IntCheckOptions& o);

}  // namespace pfq::app
