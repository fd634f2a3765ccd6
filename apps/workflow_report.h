// workflow_report.h — `pfq workflow`'s report (apps/): <out>/report.md, the results table with
// the W/A fine-tune without PfQ beside the one with it, and the two figures that compare them
// (<out>/compare_weight_range.svg: per-layer BN-folded weight range each fine-tune starts from;
// <out>/compare_curves.svg: both fine-tunes' loss and accuracy curves). Leaves out the stages
// themselves (workflow.cpp) and results.json (written by run_workflow from the same table).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "apps/workflow.h"

namespace pfq::app {

// quant::model_size of a stage's checkpoint (float, or fake-quantized for a QAT checkpoint) in KiB.
double checkpoint_kib(const nlohmann::json& stage);

// Per-layer max |w'| (BN-folded) that the fine-tune without PfQ starts from (the pretrained
// model) against the one with PfQ (after PfQ), from <out>/pfq/report.json, log y; "" when the
// report is missing or has no layers.
std::string compare_weight_range_svg(const std::string& pfq_report_json, int wbits);

// Writes report.md and the comparison figures from the stages' results: t["pretrain"],
// t["pfq"], t["finetune"], t["finetune-nopfq"], t["intcheck"], each stage's "size_kib" filled in.
void write_workflow_report(const WorkflowOptions& o, const nlohmann::json& t);

}  // namespace pfq::app
