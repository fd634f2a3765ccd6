// intcheck.cpp — export and integer check (apps/intcheck.h).
#include "apps/intcheck.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "apps/finetune.h"
#include "apps/trainer.h"
#include "core/autograd.h"
#include "quant/integer_model.h"
#include "quant/model_size.h"

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
  PFQ_CHECK(ck.train.extra.is_object() && ck.train.extra.contains("qat"), "pfq export: ", qat_checkpoint,
            " is a float checkpoint; the integer model is made from a QAT checkpoint (pfq finetune output)");
  ModulePtr model = model_from_any_checkpoint(ck);
  quant::IntModel im = quant::convert_to_integer(*model, ck.model, ck.train.extra.at("qat"));
  quant::save_integer_model(out, im);
  return {out, im.summary(), quant::model_size(*model).kib()};
}

nlohmann::json IntCheckResult::to_json() const {
  return {{"images", images}, {"int_top1", int_top1}, {"fq_top1", fq_top1}, {"agreement", agreement},
          {"max_abs_logit_diff", max_abs_logit_diff}};
}

IntCheckResult run_intcheck(const IntCheckOptions& o) {
  quant::IntModel im = quant::load_integer_model(o.model);
  ModulePtr fq;
  if (!o.qat_checkpoint.empty()) {
    Checkpoint ck = load_checkpoint(o.qat_checkpoint);
    PFQ_CHECK(ck.train.extra.is_object() && ck.train.extra.contains("qat"), "pfq intcheck: --qat-checkpoint ", o.qat_checkpoint,
              " is not a QAT checkpoint");
    PFQ_CHECK(ck.model == im.model, "pfq intcheck: ", o.qat_checkpoint, " records another architecture than ", o.model);
    fq = model_from_any_checkpoint(ck);
    fq->eval();
  }
  auto loader = make_loader(o.dataset, o.data_dir, false, o.batch_size, o.workers, 0, o.limit_test);
  loader->start_epoch(0);
  IntCheckResult r;
  int64_t correct = 0, correct_fq = 0, agree = 0;
  double max_diff = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (auto b = loader->next()) {
    Tensor logits = im.forward(b->images, o.reference);
    const int64_t n = logits.size(0), k = logits.size(1);
    const int64_t* lab = b->labels.data<int64_t>();
    Tensor ref;
    if (fq) {
      NoGradGuard ng;
      ref = fq->forward(b->images).contiguous();
    }
    for (int64_t i = 0; i < n; ++i) {
      const int pi = argmax_row(logits.data<float>() + i * k, k);
      correct += pi == lab[i];
      if (fq) {
        const int pf = argmax_row(ref.data<float>() + i * k, k);
        correct_fq += pf == lab[i];
        agree += pi == pf;
        for (int64_t j = 0; j < k; ++j)
          max_diff = std::max(max_diff, std::fabs(double(logits.data<float>()[i * k + j]) - double(ref.data<float>()[i * k + j])));
      }
    }
    r.images += n;
  }
  PFQ_CHECK(r.images > 0, "pfq intcheck: the evaluation set is empty");
  r.int_top1 = 100.0 * double(correct) / double(r.images);
  if (fq) {
    r.fq_top1 = 100.0 * double(correct_fq) / double(r.images);
    r.agreement = 100.0 * double(agree) / double(r.images);
    r.max_abs_logit_diff = max_diff;
  }
  if (!o.quiet)
    std::fprintf(stderr, "intcheck: %lld images in %.1f s\n", static_cast<long long>(r.images),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return r;
}

}  // namespace pfq::app
