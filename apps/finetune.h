// finetune.h — quantization-aware fine-tuning behind `pfq finetune` (pfq-method.md 4.3): loads
// a float (possibly PfQ-pruned) checkpoint, wraps it with quant::prepare_qat, trains with SGD
// (momentum 0.9, cosine LR), freezes BN statistics from a chosen epoch (default: the last),
// optionally re-estimates them after training (quant::reestimate_bn_stats), evaluates the
// fake-quantized model every epoch and writes metrics and a checkpoint recording the QatConfig.
// Left out: resume, freezing unfolded BNs (--no-fold-bn keeps batch statistics).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "quant/qat.h"

namespace pfq::app {

struct FinetuneOptions {
  std::string checkpoint;            // float checkpoint (pfq train / pfq prune output)
  std::string out = "runs/finetune";
  quant::QatConfig qat;
  std::string stages = "wa";         // "wa" | "w,wa" (first half weights only)
  int64_t epochs = 10;
  double lr = 0.01;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  int64_t batch_size = 128;
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  int64_t limit_train = 0, limit_test = 0;
  uint64_t seed = 0;
  int threads = 0, workers = 2;
  bool quiet = false;
  std::string device = "cpu";        // cpu | cuda | cuda:N
  int64_t freeze_bn_epoch = 0;       // 1-based epoch from which BN statistics are frozen; 0 = the last
  int64_t bn_reestimate = 0;         // batches of the BN re-estimation pass after training; 0 = none
};
void to_json(nlohmann::json& j, const FinetuneOptions& o);

// The schedule and data fields `pfq workflow` and `pfq reproduce` hand to their fine-tuning
// (both option structs name them alike).
template <typename Options>
void copy_finetune_schedule(const Options& o, FinetuneOptions& f) {
  f.epochs = o.finetune_epochs;
  f.lr = o.finetune_lr;
  f.weight_decay = o.weight_decay;
  f.batch_size = o.batch_size;
  f.dataset = o.dataset;
  f.data_dir = o.data_dir;
  f.limit_train = o.limit_train;
  f.limit_test = o.limit_test;
}

struct FinetuneResult {
  double top1 = 0, top5 = 0;
  bool diverged = false;  // a non-finite loss or gradient, or a learned range driven <= 0, stopped training;
                          // top1/top5 are still evaluated
  int64_t epochs = 0;     // epochs run (a diverged epoch counts)
  std::string checkpoint; // <out>/last.safetensors
  double size_kib = 0;    // quant::model_size of the QAT model (also written to <out>/model_size.json)
};

FinetuneResult finetune(const FinetuneOptions& opts);

}  // namespace pfq::app
