// cmd_intcheck.cpp — `pfq export` (QAT checkpoint -> integer model file, or float / QAT
// checkpoint -> ONNX with --format onnx) and `pfq intcheck` (run that file on CPU; top-1, and
// agreement with the fake-quantized model when its QAT checkpoint is given). apps/intcheck.h
// and apps/export_onnx.h do the work; docs/integer-format.md and docs/onnx-export.md the formats.
#include <cstdio>

#include "apps/cli_checks.h"
#include "apps/commands.h"
#include "apps/export_onnx.h"
#include "apps/intcheck.h"
#include "data/factory.h"

namespace pfq::app {

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "write a QAT checkpoint as an integer model (int8 weights, int32 biases, "
                                           "fixed-point requantization; docs/integer-format.md), or a float or QAT "
                                           "checkpoint as ONNX (--format onnx; docs/onnx-export.md)");
  struct Opts {
    std::string checkpoint, out, format = "pfqint";
    bool force = false, keep_bn = false, int32_bias = false;
    int64_t reference_images = 0, image_size = 224, resize_size = 256, eval_batch_size = 0;
    std::string dataset = "fashion-mnist", data_dir;
    WeightsOptions weights;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("checkpoint", o->checkpoint, "QAT checkpoint (pfq finetune output); --format onnx: also a float one or plain PyTorch weights")
      ->required()
      ->check(CLI::ExistingFile);
  add_weights_flags(cmd, o->weights);
  cmd->add_option("--format", o->format, "pfqint (the integer model) or onnx")->check(CLI::IsMember({"pfqint", "onnx"}))->capture_default_str();
  cmd->add_option("--out", o->out, "file to write (default model.pfqint / model.onnx)");
  cmd->add_flag("--force", o->force, "onnx: replace an existing --out");
  cmd->add_flag("--keep-bn", o->keep_bn, "onnx, float checkpoints: BatchNormalization nodes instead of folding BN into the conv");
  cmd->add_flag("--int32-bias", o->int32_bias, "onnx, QAT checkpoints: int32 biases at scale s_x * s_w (TensorRT's form)");
  cmd->add_option("--reference-images", o->reference_images,
                  "onnx: also write <out>.ref.safetensors with this many test images and pfq's logits for them "
                  "(tools/onnx_check.py compares ONNX Runtime's)")
      ->check(::pfq::app::NonNegative);
  cmd->add_option("--dataset", o->dataset, "onnx --reference-images: the dataset")->check(CLI::IsMember(data::dataset_names()));
  cmd->add_option("--data-dir", o->data_dir, "onnx --reference-images: dataset folder (default: the dataset's standard location)");
  cmd->add_option("--image-size", o->image_size, "onnx --reference-images, image folders: the evaluation crop size")
      ->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--resize-size", o->resize_size, "onnx --reference-images, image folders: shorter side resized to before the crop")
      ->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--eval-batch-size", o->eval_batch_size,
                  "onnx --reference-images: images per forward pass (0: 256 for the small-image datasets, 128 for image folders)")
      ->check(::pfq::app::NonNegative);
  cmd->callback([o] {
    if (o->format == "onnx") {
      const auto r = export_onnx_checkpoint({.checkpoint = o->checkpoint, .out = o->out.empty() ? "model.onnx" : o->out,
                                             .force = o->force, .fold_bn = !o->keep_bn, .int32_bias = o->int32_bias,
                                             .reference_images = o->reference_images, .eval_batch_size = o->eval_batch_size,
                                             .dataset = o->dataset, .data_dir = o->data_dir, .image_size = o->image_size,
                                             .resize_size = o->resize_size, .weights = o->weights});
      std::printf("wrote %s: %s\n", (o->out.empty() ? "model.onnx" : o->out).c_str(), r.summary().c_str());
      return;
    }
    PFQ_CHECK(!o->weights.any(), "pfq export --format pfqint: the integer model comes from a QAT checkpoint (pfq finetune), which "
                                 "records its architecture; --arch and the other plain-weights flags are for --format onnx");
    if (o->out.empty()) o->out = "model.pfqint";
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
