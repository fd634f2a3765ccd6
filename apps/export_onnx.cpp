// export_onnx.cpp — a checkpoint to ONNX (export_onnx.h).
#include "apps/export_onnx.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "apps/model_loading.h"
#include "apps/run_options.h"
#include "core/autograd.h"
#include "core/error.h"
#include "core/io/safetensors.h"
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
  auto loader = make_test_loader(d, 0);
  check_checkpoint_fits(ckpt, "checkpoint " + r.checkpoint, *loader, r.dataset);
  loader->start_epoch(0);
  std::vector<Tensor> xs;
  int64_t n = 0;
  while (auto b = loader->next()) xs.push_back(b->images.contiguous()), n += xs.back().size(0);
  PFQ_CHECK(n > 0, "pfq export: the test split of ", r.dataset, " gave no images");
  Shape shape = xs[0].shape();
  shape[0] = n;
  Tensor x = Tensor::empty(shape);
  int64_t at = 0;
  for (const Tensor& b : xs) {
    std::copy(b.data<float>(), b.data<float>() + b.numel(), x.data<float>() + at);
    at += b.numel();
  }
  NoGradGuard ng;
  model.eval();
  std::vector<std::pair<std::string, Tensor>> t{{"input", x}, {"logits", model.forward(x).contiguous()}};
  if (is_qat_checkpoint(ckpt)) {
    try {  // the integer model's logits too, where pfq's integer runtime takes this model
      t.emplace_back("int_logits", quant::convert_to_integer(model, ckpt.model).forward(x));
    } catch (const Error& e) {
      std::fprintf(stderr, "pfq export: reference without the integer model's logits: %s\n", e.what());
    }
  }
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
