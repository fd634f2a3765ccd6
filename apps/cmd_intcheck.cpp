// cmd_intcheck.cpp — `pfq export` (QAT checkpoint -> integer model file) and `pfq intcheck`
// (run that file on CPU; top-1, and agreement with the fake-quantized model when its QAT
// checkpoint is given). apps/intcheck.h does the work; docs/integer-format.md is the format.
#include <cstdio>

#include "apps/commands.h"
#include "apps/intcheck.h"

namespace pfq::app {

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "write a QAT checkpoint as an integer model (int8 weights, int32 biases, "
                                           "fixed-point requantization; docs/integer-format.md)");
  struct Opts {
    std::string checkpoint, out = "model.pfqint";
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("checkpoint", o->checkpoint, "QAT checkpoint (pfq finetune output)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "integer model file to write")->capture_default_str();
  cmd->callback([o] {
    ExportResult r = export_integer(o->checkpoint, o->out);
    std::printf("%s\nwrote %s (QAT model size %.3f KiB)\n", r.summary.c_str(), r.path.c_str(), r.size_kib);
  });
}

void add_intcheck_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("intcheck", "run an integer model file on CPU: top-1, and agreement with the "
                                             "fake-quantized model given its QAT checkpoint");
  auto o = std::make_shared<IntCheckOptions>();
  cmd->add_option("model", o->model, "integer model file (pfq export)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--qat-checkpoint", o->qat_checkpoint, "the QAT checkpoint it was exported from (for the agreement)")
      ->check(CLI::ExistingFile);
  add_data_flags(cmd, *o, {.limit_train = nullptr});
  cmd->add_flag("--reference", o->reference, "use the naive integer conv loops (slow; for checking)");
  cmd->add_flag("--fq-float64", o->fq_float64,
                "also run the fake-quantized model in float64 and report the agreements int/fq32, int/fq64, "
                "fq32/fq64 (how much of the disagreement is float32 rounding near quantization ties)");
  cmd->add_flag("--trace-layers", o->trace_layers,
                "compare the integer model's codes with the fake-quantized model's at every quantizer (needs "
                "--qat-checkpoint): elements and images that differ, largest difference in steps");
  cmd->add_flag("--quiet", o->quiet, "no timing line");
  cmd->callback([o] {
    IntCheckResult r = run_intcheck(*o);
    std::printf("integer model: top1 %.2f%% on %lld images\n", r.int_top1, static_cast<long long>(r.images));
    if (r.agreement >= 0)
      std::printf("fake-quantized model: top1 %.2f%%; predictions agree on %.2f%% of images (max |logit diff| %.4g)\n", r.fq_top1,
                  r.agreement, r.max_abs_logit_diff);
    if (r.fq64_top1 >= 0)
      std::printf("fake-quantized model in float64: top1 %.2f%%; agrees with the integer model on %.2f%%, with the float32 "
                  "fake-quantized model on %.2f%% of images\n",
                  r.fq64_top1, r.agreement_int_fq64, r.agreement_fq32_fq64);
    if (!r.layers.empty()) {
      std::printf("%-34s %12s %12s %10s %14s\n", "quantizer (graph order)", "elements", "differ", "max steps", "images differ");
      for (const LayerAgreement& l : r.layers)
        std::printf("%-34s %12lld %12lld %10lld %14lld\n", l.name.c_str(), static_cast<long long>(l.elements),
                    static_cast<long long>(l.differ), static_cast<long long>(l.max_steps), static_cast<long long>(l.images_differ));
    }
  });
}

}  // namespace pfq::app
