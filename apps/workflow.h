// workflow.h — `pfq workflow`: the paper's workflow as resumable stages in one output
// directory: pretrain -> PfQ -> quantized fine-tune -> evaluate + report. A finished stage
// writes <out>/<stage>/done.json and is never redone; an interrupted stage resumes from its
// own checkpoint. The resolved configuration is saved as <out>/config.json.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "apps/trainer.h"

namespace pfq::app {

struct WorkflowOptions {
  std::string out = "runs/workflow";
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  std::string model = "mobilenetv1";
  double width = 0.5;
  uint64_t seed = 0;
  int threads = 0;
  int workers = 2;
  int64_t limit_train = 0, limit_test = 0;
  bool quick = false;  // reduced schedule and data for smoke tests (< 3 minutes on 2 cores)
  // pretrain (pfq-method.md section 4.1)
  int64_t pretrain_epochs = 3;
  double pretrain_lr = 0.1;
  double weight_decay = 5e-4;
  int64_t batch_size = 128;
  // PfQ (section 3)
  std::string criterion = "var-below-eps";
  std::string border = "exact";
  // quantized fine-tuning (section 4.3)
  int wbits = 4, abits = 4;
  int64_t finetune_epochs = 1;
  double finetune_lr = 0.01;
};
void to_json(nlohmann::json& j, const WorkflowOptions& o);
void from_json(const nlohmann::json& j, WorkflowOptions& o);

// Applies --quick's reductions (fewer epochs, data subsets) to `o`.
void apply_quick(WorkflowOptions& o);

// Runs the stages that are not done yet; returns the final results table as JSON.
nlohmann::json run_workflow(const WorkflowOptions& o);

}  // namespace pfq::app
