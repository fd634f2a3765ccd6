// intcheck.cpp — export and integer check (apps/intcheck.h).
#include "apps/intcheck.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "apps/model_loading.h"
#include "apps/trainer.h"
#include "core/autograd.h"
#include "quant/integer/model.h"
#include "quant/model_size.h"
#include "quant/qat.h"

namespace pfq::app {

namespace {

int argmax_row(const float* p, int64_t k) {
  int64_t best = 0;
  for (int64_t j = 1; j < k; ++j)
    if (p[j] > p[best]) best = j;
  return static_cast<int>(best);
}

}  // namespace

ExportResult export_integer(const std::string& qat_checkpoint, const std::string& out) {
  Checkpoint ck = load_checkpoint(qat_checkpoint);
  PFQ_CHECK(is_qat_checkpoint(ck), "pfq export: ", qat_checkpoint,
            " is a float checkpoint; the integer model is made from a QAT checkpoint (pfq finetune output)");
  ModulePtr model = model_from_any_checkpoint(ck);
  quant::IntModel im = quant::convert_to_integer(*model, ck.model, ck.train.extra.at("qat"));
  quant::save_integer_model(out, im);
  return {out, im.summary(), quant::model_size(*model).kib()};
}

nlohmann::json IntCheckResult::to_json() const {
  nlohmann::json j = {{"images", images}, {"int_top1", int_top1}, {"fq_top1", fq_top1}, {"agreement", agreement},
                      {"max_abs_logit_diff", max_abs_logit_diff}};
  if (!layers.empty()) {
    j["layers"] = nlohmann::json::array();
    for (const LayerAgreement& l : layers)
      j["layers"].push_back({{"name", l.name}, {"elements", l.elements}, {"differ", l.differ}, {"max_steps", l.max_steps},
                             {"images_differ", l.images_differ}});
  }
  if (fq64_top1 >= 0) {
    j["fq64_top1"] = fq64_top1;
    j["agreement_int_fq64"] = agreement_int_fq64;
    j["agreement_fq32_fq64"] = agreement_fq32_fq64;
  }
  return j;
}

IntCheckResult run_intcheck(const IntCheckOptions& o) {
  PFQ_CHECK(!o.fq_float64 || !o.qat_checkpoint.empty(), "pfq intcheck: --fq-float64 needs --qat-checkpoint");
  PFQ_CHECK(!o.trace_layers || !o.qat_checkpoint.empty(), "pfq intcheck: --trace-layers needs --qat-checkpoint");
  quant::IntModel im = quant::load_integer_model(o.model);
  ModulePtr fq, fq64;
  if (!o.qat_checkpoint.empty()) {
    Checkpoint ck = load_checkpoint(o.qat_checkpoint);
    PFQ_CHECK(is_qat_checkpoint(ck), "pfq intcheck: --qat-checkpoint ", o.qat_checkpoint,
              " is not a QAT checkpoint");
    PFQ_CHECK(ck.model == im.model, "pfq intcheck: ", o.qat_checkpoint, " records another architecture than ", o.model);
    fq = model_from_any_checkpoint(ck);
    fq->eval();
    if (o.fq_float64) {
      fq64 = model_from_any_checkpoint(ck, DType::Float64);
      fq64->eval();
    }
  }
  // trace_layers: the fake-quantized model's quantizers by the integer nodes' names.
  std::map<const Module*, std::string> fq_names;
  std::map<std::string, LayerAgreement> by_name;
  if (o.trace_layers)
    for (const auto& [path, m] : fq->named_modules())
      if (m->type_name() == "FakeQuantize") fq_names[m] = path;
  auto loader = make_loader(o.dataset, o.data_dir, false, o.batch_size, o.workers, 0, o.limit_test, o);
  loader->start_epoch(0);
  IntCheckResult r;
  int64_t correct = 0, correct_fq = 0, agree = 0, correct_fq64 = 0, agree_int64 = 0, agree_3264 = 0;
  double max_diff = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (auto b = loader->next()) {
    std::map<std::string, Tensor> int_codes;
    quant::FakeQuantTrace fq_trace;
    Tensor logits = im.forward(b->images, o.reference, o.trace_layers ? &int_codes : nullptr);
    const int64_t n = logits.size(0), k = logits.size(1);
    const int64_t* lab = b->labels.data<int64_t>();
    Tensor ref, ref64;
    if (fq) {
      NoGradGuard ng;
      quant::set_fake_quant_trace(o.trace_layers ? &fq_trace : nullptr);
      ref = fq->forward(b->images).contiguous();
      quant::set_fake_quant_trace(nullptr);
      if (fq64) ref64 = fq64->forward(b->images.to(DType::Float64)).to(DType::Float32).contiguous();
    }
    for (int64_t i = 0; i < n; ++i) {
      const int pi = argmax_row(logits.data<float>() + i * k, k);
      correct += pi == lab[i];
      if (fq) {
        const int pf = argmax_row(ref.data<float>() + i * k, k);
        correct_fq += pf == lab[i];
        agree += pi == pf;
        if (fq64) {
          const int p64 = argmax_row(ref64.data<float>() + i * k, k);
          correct_fq64 += p64 == lab[i];
          agree_int64 += pi == p64;
          agree_3264 += pf == p64;
        }
        for (int64_t j = 0; j < k; ++j)
          max_diff = std::max(max_diff, std::fabs(double(logits.data<float>()[i * k + j]) - double(ref.data<float>()[i * k + j])));
      }
    }
    for (const auto& [mod, out] : fq_trace) {
      const std::string& name = fq_names.at(mod);
      auto it = int_codes.find(name);
      if (it == int_codes.end()) continue;  // a quantizer the integer graph folds away
      const quant::IntNode& node = im.node(name);
      const Tensor fqo = out.to(Device::cpu()).to(DType::Float32).contiguous();
      const Tensor& iq = it->second;
      PFQ_CHECK(fqo.numel() == iq.numel(), "pfq intcheck: quantizer '", name, "' has ", fqo.numel(), " outputs in the fake-quantized model, ",
                iq.numel(), " in the integer model");
      LayerAgreement& l = by_name[name];
      l.name = name;
      const int64_t per_image = iq.numel() / n;
      const float* pf = fqo.data<float>();
      const int8_t* pi = iq.data<int8_t>();
      for (int64_t img = 0; img < n; ++img) {
        bool any = false;
        for (int64_t e = img * per_image; e < (img + 1) * per_image; ++e) {
          const int64_t code = static_cast<int64_t>(std::nearbyint(pf[e] / node.scale)) + node.zero_point;
          const int64_t d = std::llabs(code - int64_t{pi[e]});
          l.differ += d != 0;
          l.max_steps = std::max(l.max_steps, d);
          any = any || d != 0;
        }
        l.images_differ += any;
      }
      l.elements += iq.numel();
    }
    r.images += n;
  }
  for (const quant::IntNode& node : im.nodes)
    if (by_name.count(node.name)) r.layers.push_back(by_name.at(node.name));
  PFQ_CHECK(r.images > 0, "pfq intcheck: the evaluation set is empty");
  r.int_top1 = 100.0 * double(correct) / double(r.images);
  if (fq) {
    r.fq_top1 = 100.0 * double(correct_fq) / double(r.images);
    r.agreement = 100.0 * double(agree) / double(r.images);
    r.max_abs_logit_diff = max_diff;
  }
  if (fq64) {
    r.fq64_top1 = 100.0 * double(correct_fq64) / double(r.images);
    r.agreement_int_fq64 = 100.0 * double(agree_int64) / double(r.images);
    r.agreement_fq32_fq64 = 100.0 * double(agree_3264) / double(r.images);
  }
  if (!o.quiet)
    std::fprintf(stderr, "intcheck: %lld images in %.1f s\n", static_cast<long long>(r.images),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return r;
}

}  // namespace pfq::app
