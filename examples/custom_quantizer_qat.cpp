// custom_quantizer_qat.cpp — teaches how a new quantizer plugs into quantization-aware training
// without touching the library: a Quantizer subclass (weights on a grid whose step is a power of
// two, as shift-only hardware wants, with a straight-through gradient from round_ste), made
// known by name with register_quantizer, chosen in QatConfig::wquant, and wired into every
// conv and linear by prepare_qat. A small CNN is pretrained briefly in float on Fashion-MNIST,
// prepared for W4/A8 with the new quantizer (BN folded into the convs), fine-tuned, evaluated.
//
//   custom_quantizer_qat [--data-dir DIR] [--train N] [--test N]
#include <cmath>
#include <cstdio>
#include <string>

#include "core/ops.h"
#include "core/optim/sgd.h"
#include "fashion_mnist.h"  // flags, loaders, top-1 (shared by the Fashion-MNIST examples)
#include "layers/layers.h"
#include "quant/qat.h"
#include "quant/quantizer.h"

using namespace pfq;

// Symmetric b-bit weights, step s = 2^ceil(log2(max|x| / (2^(b-1) - 1))): out = clamp(round(x / s),
// -qmax, qmax) * s. Gradient: straight through the rounding, zero where the clamp cuts (clamp's).
class Pow2Quantizer : public quant::Quantizer {
 public:
  using Quantizer::Quantizer;
  std::string name() const override { return "pow2"; }
  Tensor forward(const Tensor& x, bool /*training*/) override {
    check_input(x);  // dtype (and channels) as the spec says, with the library's error text
    const double qmax = std::ldexp(1.0, spec_.bits - 1) - 1;
    double max_abs;
    {
      NoGradGuard no_grad;  // the range is a statistic, not part of the gradient
      max_abs = max(abs(x)).item();
    }
    const double s = std::exp2(std::ceil(std::log2(std::max(max_abs, 1e-12) / qmax)));
    last_scale_ = Tensor::full({1}, s, spec_.dtype);  // what last_scale() reports
    return mul(clamp(round_ste(mul(x, 1.0 / s)), -qmax, qmax), s);
  }
};

// [N, 1, 28, 28] -> [N, 10]: two conv-BN-ReLU-pool stages and a linear layer.
ModulePtr small_cnn(Generator& gen) {
  auto net = std::make_shared<Sequential>();
  for (auto [ic, oc] : {std::pair<int64_t, int64_t>{1, 16}, {16, 32}}) {
    net->push_back(std::make_shared<Conv2d>(ic, oc, 3, Conv2dArgs{.padding = 1, .bias = false}, gen));
    net->push_back(std::make_shared<BatchNorm2d>(oc)).push_back(std::make_shared<ReLU>());
    net->push_back(std::make_shared<MaxPool2d>(2));
  }
  net->push_back(std::make_shared<Flatten>()).push_back(std::make_shared<Linear>(32 * 7 * 7, 10, true, gen));
  return net;
}

// One epoch of SGD over `loader` at a fixed learning rate.
void train_epoch(Module& model, data::DataLoader& loader, int64_t epoch, double lr) {
  std::vector<optim::ParamRef> params;  // after prepare_qat this includes learnable quantizer ranges
  for (auto& [name, p] : model.named_parameters()) params.push_back({name, p});
  optim::Sgd sgd(params, {.lr = lr, .momentum = 0.9, .weight_decay = 5e-4, .exclude_bn_bias = true});
  model.train();
  loader.start_epoch(epoch);
  while (auto b = loader.next()) {
    sgd.zero_grad();
    cross_entropy(model(b->images), b->labels).backward();
    sgd.step();
  }
}

int main(int argc, char** argv) {
  std::string data_dir = data::default_data_dir("fashion-mnist");
  int64_t n_train = 4096, n_test = 1000;
  if (!example::parse_flags(argc, argv, {{"--data-dir", &data_dir}, {"--train", &n_train}, {"--test", &n_test}})) return 2;
  example::Loaders data = example::fashion_mnist(data_dir, n_train, n_test);
  if (!data.train) return 2;
  data::DataLoader &train = *data.train, &test = *data.test;

  // 1. The new quantizer gets a name; from now on make_quantizer("pow2", spec) builds it.
  quant::register_quantizer("pow2", [](const quant::QuantSpec& spec) {
    PFQ_CHECK(spec.symmetric && !spec.per_channel && spec.bits >= 2 && spec.bits <= 8,
              "pow2: per-tensor symmetric weights of 2..8 bits only, got bits ", spec.bits);
    return std::make_unique<Pow2Quantizer>(spec);
  });

  // 2. A float model, briefly pretrained.
  Generator gen(0);
  ModulePtr model = small_cnn(gen);
  train_epoch(*model, train, 0, 0.05);
  std::printf("float: test top1 %.2f%%\n", example::top1(*model, test));

  // 3. QAT: every conv (BN folded in) and linear gets the new quantizer on its weights;
  //    activations keep the library's ema observer. Then fine-tune with the quantizers active.
  quant::QatConfig qcfg{.wbits = 4, .abits = 8, .wquant = "pow2", .aquant = "ema", .calib_batches = 4};
  quant::QatReport rep = quant::prepare_qat(*model, qcfg);
  std::printf("prepare_qat: %lld folded conv+BN, %lld linears, %lld activation quantizers\n",
              (long long)rep.folded_convs, (long long)rep.linears, (long long)rep.act_quantizers);
  train_epoch(*model, train, 1, 0.01);
  std::printf("W4/A8 pow2: test top1 %.2f%%\n", example::top1(*model, test));

  // 4. The quantizers in the model are ours: every weight step is a power of two.
  int64_t pow2_quantizers = 0, not_pow2 = 0;
  for (auto& [name, m] : model->named_modules()) {
    auto* fq = dynamic_cast<quant::FakeQuantize*>(m);
    if (!fq || !fq->quantizer() || fq->quantizer()->name() != "pow2") continue;
    ++pow2_quantizers;
    const double s = fq->quantizer()->last_scale().item();
    not_pow2 += std::exp2(std::round(std::log2(s))) != s;
    std::printf("  %s: step 2^%g\n", name.c_str(), std::log2(s));
  }
  std::printf("%lld pow2 weight quantizers, %lld with a step that is not a power of two\n", (long long)pow2_quantizers,
              (long long)not_pow2);
  return pow2_quantizers > 0 && not_pow2 == 0 ? 0 : 1;
}
