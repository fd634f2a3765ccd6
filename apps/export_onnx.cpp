// export_onnx.cpp — a checkpoint to ONNX (export_onnx.h).
#include "apps/export_onnx.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "apps/model_loading.h"
#include "apps/run_options.h"
#include "core/autograd.h"
#include "core/error.h"
#include "core/io/safetensors.h"
#include "core/ops.h"
#include "quant/integer/model.h"

namespace pfq::app {

namespace {

// The reference tensors (computed before anything is written, so an error leaves no file).
std::vector<std::pair<std::string, Tensor>> reference(const OnnxExportRequest& r, const Checkpoint& ckpt, Module& model) {
  DataOptions d;
  d.dataset = r.dataset;
  d.data_dir = r.data_dir;
  d.limit_test = r.reference_images;
  d.image_size = r.image_size;
  d.resize_size = r.resize_size;
  d.eval_batch_size = r.eval_batch_size;
  auto loader = make_test_loader(d, 0);
  check_checkpoint_fits(ckpt, "checkpoint " + r.checkpoint, *loader, r.dataset);
  NoGradGuard ng;
  model.eval();
  // One evaluation batch per forward pass, as pfq eval runs: 500 ImageNet images in one pass
  // would need several GB of activations. The integer model's logits too, where pfq's integer
  // runtime takes this model.
  std::optional<quant::IntModel> int_model;
  const auto no_int = [&](const Error& e) {
    std::fprintf(stderr, "pfq export: reference without the integer model's logits: %s\n", e.what());
    int_model.reset();
  };
  if (is_qat_checkpoint(ckpt)) {
    try {
      int_model.emplace(quant::convert_to_integer(model, ckpt.model));
    } catch (const Error& e) {
      no_int(e);
    }
  }
  std::vector<Tensor> xs, logits, int_logits;
  loader->start_epoch(0);
  while (auto b = loader->next()) {
    xs.push_back(b->images.contiguous());
    logits.push_back(model.forward(xs.back()).contiguous());
    if (!int_model) continue;
    try {
      int_logits.push_back(int_model->forward(xs.back()));
    } catch (const Error& e) {
      no_int(e);
    }
  }
  PFQ_CHECK(!xs.empty(), "pfq export: the test split of ", r.dataset, " gave no images");
  std::vector<std::pair<std::string, Tensor>> t{{"input", concat(xs, 0)}, {"logits", concat(logits, 0)}};
  if (int_model) t.emplace_back("int_logits", concat(int_logits, 0));
  return t;
}

}  // namespace

onnx_export::Result export_onnx_checkpoint(const OnnxExportRequest& r) {
  PFQ_CHECK(onnx_export::available(), "pfq export --format onnx: this pfq was built without ONNX export (install Debian's ",
            "libprotobuf-dev, protobuf-compiler and libonnx-dev, then meson setup --reconfigure)");
  PFQ_CHECK(r.force || !std::filesystem::exists(r.out), "pfq export: --out ", r.out,
            " exists; pass --force to replace it");
  const Checkpoint ckpt = load_checkpoint_or_weights(r.checkpoint, r.weights);
  ModulePtr model = model_from_any_checkpoint(ckpt);
  const models::ModelConfig& c = ckpt.model;
  onnx_export::Options o;
  o.input_shape = {1, c.in_channels, c.input_size, c.input_size};
  o.fold_bn = r.fold_bn;
  o.int32_bias = r.int32_bias;
  o.producer_version = "pfq";
  const auto ref = r.reference_images > 0 ? reference(r, ckpt, *model) : std::vector<std::pair<std::string, Tensor>>{};
  const onnx_export::Result res = onnx_export::export_model(*model, o, r.out);
  if (!ref.empty()) {
    std::string base = r.out;
    if (base.size() > 5 && base.substr(base.size() - 5) == ".onnx") base.resize(base.size() - 5);
    io::save_safetensors(base + ".ref.safetensors", ref, {{"checkpoint", r.checkpoint}, {"dataset", r.dataset}});
  }
  return res;
}

}  // namespace pfq::app
