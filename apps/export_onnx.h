// export_onnx.h — `pfq export --format onnx` (apps/): a float or QAT checkpoint written as an
// ONNX file by onnx/export.h, input shape and architecture from the checkpoint's metadata.
// Left out: exporting several checkpoints at once (pfq reproduce's runs one by one).
#pragma once
#include <string>

#include "apps/plain_weights.h"
#include "onnx/export.h"

namespace pfq::app {

struct OnnxExportRequest {
  std::string checkpoint, out;
  bool force = false;       // replace an existing `out`
  bool fold_bn = true;      // float checkpoints: BN folded into the conv before it
  bool int32_bias = false;  // QAT checkpoints: biases as int32 at s_x * s_w
  // > 0: also writes <out without .onnx>.ref.safetensors: the first `reference_images` test
  // images of `dataset` ("input", normalised as pfq feeds them) and pfq's logits for them
  // ("logits"; a QAT checkpoint's also from its integer model, "int_logits", where pfq's integer
  // runtime takes the model), for
  // tools/onnx_check.py.
  int64_t reference_images = 0;
  int64_t eval_batch_size = 0;  // reference images per forward pass (0: the evaluation default, DataOptions)
  std::string dataset = "fashion-mnist", data_dir;
  int64_t image_size = 224, resize_size = 256;  // image folders: the evaluation crop and resize (DataOptions)
  WeightsOptions weights;  // plain weights' architecture (apps/plain_weights.h)
};

// Refuses an existing `out` without `force` before loading anything; the file is written
// atomically, so an error leaves nothing behind.
onnx_export::Result export_onnx_checkpoint(const OnnxExportRequest& r);

}  // namespace pfq::app
