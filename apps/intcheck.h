// intcheck.h — the integer check of a fine-tuned QAT checkpoint (issue #4 items 5-6): export it
// as an integer model file (quant/integer_model.h, docs/integer-format.md) and run that file on
// CPU over a test set, reporting its top-1 and, given the QAT checkpoint, the agreement of its
// predictions with the fake-quantized float model. Behind `pfq export`, `pfq intcheck` and the
// workflow's intcheck stage. Left out: CUDA (the integer model is CPU only).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace pfq::app {

struct ExportResult {
  std::string path;
  std::string summary;   // IntModel::summary()
  double size_kib = 0;   // quant::model_size of the QAT model
};
// Loads a QAT checkpoint (pfq finetune output), converts it and writes `out`.
ExportResult export_integer(const std::string& qat_checkpoint, const std::string& out);

struct IntCheckOptions {
  std::string model;           // integer model file (pfq export)
  std::string qat_checkpoint;  // optional: compare with the fake-quantized model
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  int64_t limit_test = 0;
  int64_t batch_size = 256;
  int workers = 2;
  bool reference = false;      // naive conv loops instead of im2col
  bool quiet = false;
};

struct IntCheckResult {
  int64_t images = 0;
  double int_top1 = 0;
  double fq_top1 = -1;     // -1 without a QAT checkpoint
  double agreement = -1;   // % of images whose predicted class is the same in both models
  double max_abs_logit_diff = -1;
  nlohmann::json to_json() const;
};
IntCheckResult run_intcheck(const IntCheckOptions& o);

}  // namespace pfq::app
