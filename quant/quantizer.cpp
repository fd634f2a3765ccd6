// quantizer.cpp — the named quantizers and their factory. State updates (running ranges,
// LSQ's first-call step) run under NoGradGuard and write in place. State lives on the device
// the module moved it to; the int64 counters are read with item() (a host copy on CUDA).
#include "quant/quantizer.h"

#include <algorithm>
#include <mutex>
#include <tuple>

#include "core/dist/communicator.h"

namespace pfq::quant {
namespace {

int64_t param_rows(const QuantSpec& s) { return s.per_channel ? s.channels : 1; }

}  // namespace

void Quantizer::check_input(const Tensor& x) const {
  PFQ_CHECK(x.defined(), name(), " quantizer: undefined input");
  PFQ_CHECK(x.dtype() == spec_.dtype, name(), " quantizer: input is ", x.describe(), " but the quantizer was built for ",
            dtype_name(spec_.dtype), " (set QuantSpec::dtype)");
  if (spec_.per_channel && spec_.channels > 0)
    PFQ_CHECK(x.dim() >= 1 && x.size(0) == spec_.channels, name(), " quantizer: per-channel over ", spec_.channels,
              " channels but the input is ", x.describe());
}

std::optional<std::pair<Tensor, Tensor>> Quantizer::range_from_batch(const Tensor&, const Tensor&, bool) {
  PFQ_FAIL(name(), " quantizer: cannot quantize from a batch range handed over by a fused op (",
           spec_.per_channel ? "per channel" : "its range is not the batch's", ")");
}

void Quantizer::check_batch_range(const Tensor& lo, const Tensor& hi) const {
  PFQ_CHECK(takes_batch_range(), name(), " quantizer: cannot quantize from a batch range handed over by a fused op");
  for (const Tensor* t : {&lo, &hi})
    PFQ_CHECK(t->defined() && t->numel() == 1 && t->dtype() == spec_.dtype, name(), " quantizer: a batch range must be two [1] ",
              dtype_name(spec_.dtype), " tensors, got ", t->defined() ? t->describe() : std::string("undefined"));
}

namespace {
// A data-parallel run observes the global batch: the ranks' batch ranges combined (the least low,
// the greatest high), what one process given every rank's images would observe.
std::pair<Tensor, Tensor> combine_over_ranks(const Tensor& lo, const Tensor& hi) {
  if (dist::world().size() == 1) return {lo, hi};
  Tensor l = lo.detach().contiguous().clone(), h = hi.detach().contiguous().clone();
  dist::world().all_reduce(l, dist::ReduceOp::Min);
  dist::world().all_reduce(h, dist::ReduceOp::Max);
  return {l, h};
}
}  // namespace

// ---------------- minmax ----------------
Tensor MinMaxQuantizer::forward(const Tensor& x, bool training) {
  check_input(x);
  if (training && dist::world().size() > 1) {  // the range of every rank's batch
    const FakeQuantOptions opt = options();
    std::pair<Tensor, Tensor> range;
    {
      NoGradGuard ng;
      range = observe_range(x, opt);
    }
    range = combine_over_ranks(range.first, range.second);
    FakeQuantResult r = fake_quantize_range(x, range.first, range.second, opt);
    last_scale_ = r.scale;
    last_zero_point_ = r.zero_point;
    return r.out;
  }
  FakeQuantResult r = fake_quantize(x, options());
  last_scale_ = r.scale;
  last_zero_point_ = r.zero_point;
  return r.out;
}

std::optional<std::pair<Tensor, Tensor>> MinMaxQuantizer::range_from_batch(const Tensor& lo, const Tensor& hi, bool training) {
  check_batch_range(lo, hi);
  const auto [l, h] = training ? combine_over_ranks(lo, hi) : std::pair{lo, hi};
  std::tie(last_scale_, last_zero_point_) = range_qparams(l, h, options());
  return std::pair{l, h};
}

// ---------------- ema ----------------
EmaQuantizer::EmaQuantizer(const QuantSpec& spec) : Quantizer(spec) {
  running_min_ = Tensor::zeros({param_rows(spec)}, spec.dtype);
  running_max_ = Tensor::zeros({param_rows(spec)}, spec.dtype);
  num_batches_ = Tensor::zeros({}, DType::Int64);
}

NamedTensorList EmaQuantizer::buffers() const {
  return {{"running_min", running_min_}, {"running_max", running_max_}, {"num_batches", num_batches_}};
}

int64_t EmaQuantizer::num_batches() const { return static_cast<int64_t>(num_batches_.item()); }

bool EmaQuantizer::calibrated() const { return num_batches() >= std::max<int64_t>(spec_.calib_batches, 1); }

bool EmaQuantizer::observe(const Tensor& batch_lo, const Tensor& batch_hi, bool training) {
  if (!training) return calibrated();
  const int64_t seen = num_batches();
  NoGradGuard ng;
  const auto [lo, hi] = combine_over_ranks(batch_lo, batch_hi);
  if (seen == 0) {
    running_min_.copy_(lo);
    running_max_.copy_(hi);
  } else {
    const double d = spec_.ema_decay;
    running_min_.mul_(d).add_(lo, 1 - d);
    running_max_.mul_(d).add_(hi, 1 - d);
  }
  num_batches_.fill_(static_cast<double>(seen + 1));
  return seen >= spec_.calib_batches;
}

Tensor EmaQuantizer::forward(const Tensor& x, bool training) {
  check_input(x);
  const FakeQuantOptions opt = options();
  std::pair<Tensor, Tensor> batch;
  if (training) {
    NoGradGuard ng;
    batch = observe_range(x, opt);
  }
  if (!observe(batch.first, batch.second, training)) return x;
  FakeQuantResult r = fake_quantize_range(x, running_min_, running_max_, opt);
  last_scale_ = r.scale;
  last_zero_point_ = r.zero_point;
  return r.out;
}

std::optional<std::pair<Tensor, Tensor>> EmaQuantizer::range_from_batch(const Tensor& lo, const Tensor& hi, bool training) {
  check_batch_range(lo, hi);
  if (!observe(lo.to(running_min_.device()), hi.to(running_max_.device()), training)) return std::nullopt;
  std::tie(last_scale_, last_zero_point_) = range_qparams(running_min_, running_max_, options());
  return std::pair{running_min_, running_max_};
}

// ---------------- pact ----------------
PactQuantizer::PactQuantizer(const QuantSpec& spec) : Quantizer(spec) {
  alpha_ = Tensor::full({param_rows(spec)}, spec.pact_alpha, spec.dtype).set_requires_grad(true);
}

Tensor PactQuantizer::forward(const Tensor& x, bool /*training*/) {
  check_input(x);
  Tensor out = pact_quantize(x, alpha_, spec_.bits);
  NoGradGuard ng;
  last_scale_ = mul(alpha_.detach(), 1.0 / static_cast<double>((int64_t{1} << spec_.bits) - 1));
  last_zero_point_ = Tensor::zeros({param_rows(spec_)}, spec_.dtype, x.device());
  return out;
}

// ---------------- lsq ----------------
LsqQuantizer::LsqQuantizer(const QuantSpec& spec) : Quantizer(spec) {
  step_ = Tensor::ones({param_rows(spec)}, spec.dtype).set_requires_grad(true);
  initialized_ = Tensor::zeros({}, DType::Int64);
}

Tensor LsqQuantizer::forward(const Tensor& x, bool /*training*/) {
  check_input(x);
  if (initialized_.item() == 0) {
    NoGradGuard ng;
    Tensor step = lsq_init_step(x, spec_.bits, spec_.symmetric, spec_.per_channel).contiguous();
    if (const int ranks = dist::world().size(); ranks > 1) {  // the ranks' first batches: one step everywhere
      dist::world().all_reduce(step, dist::ReduceOp::Sum);
      step = mul(step, 1.0 / ranks);
    }
    step_.copy_(step);
    initialized_.fill_(1);
  }
  Tensor out = lsq_quantize(x, step_, spec_.bits, spec_.symmetric);
  last_scale_ = step_.detach().clone();
  last_zero_point_ = Tensor::zeros({param_rows(spec_)}, spec_.dtype, x.device());
  return out;
}

// ---------------- dorefa ----------------
Tensor DorefaQuantizer::forward(const Tensor& x, bool /*training*/) {
  check_input(x);
  return dorefa_quantize(x, spec_.bits, spec_.per_channel);
}

// ---------------- factory ----------------
namespace {

const std::vector<std::string> kBuiltinQuantizers = {"minmax", "ema", "pact", "lsq", "dorefa"};

struct CustomQuantizers {
  std::mutex mu;
  std::vector<std::pair<std::string, QuantizerFactory>> entries;  // in registration order
};
CustomQuantizers& custom_quantizers() {
  static CustomQuantizers c;
  return c;
}

}  // namespace

void register_quantizer(const std::string& name, QuantizerFactory factory) {
  PFQ_CHECK(!name.empty(), "register_quantizer: empty name");
  PFQ_CHECK(factory != nullptr, "register_quantizer(\"", name, "\"): empty factory");
  CustomQuantizers& c = custom_quantizers();
  std::lock_guard<std::mutex> lock(c.mu);
  bool taken = std::find(kBuiltinQuantizers.begin(), kBuiltinQuantizers.end(), name) != kBuiltinQuantizers.end();
  for (const auto& e : c.entries) taken = taken || e.first == name;
  PFQ_CHECK(!taken, "register_quantizer: a quantizer named \"", name, "\" exists already; choose another name");
  c.entries.emplace_back(name, std::move(factory));
}

std::vector<std::string> quantizer_names() {
  std::vector<std::string> names = kBuiltinQuantizers;
  CustomQuantizers& c = custom_quantizers();
  std::lock_guard<std::mutex> lock(c.mu);
  for (const auto& e : c.entries) names.push_back(e.first);
  return names;
}

std::unique_ptr<Quantizer> make_quantizer(const std::string& name, const QuantSpec& spec) {
  auto need_bits = [&](int lo, int hi) {
    PFQ_CHECK(spec.bits >= lo && spec.bits <= hi, "make_quantizer(\"", name, "\"): bits must be in ", lo, "..", hi,
              ", got ", spec.bits);
  };
  auto need_channels = [&] {
    PFQ_CHECK(!spec.per_channel || spec.channels > 0, "make_quantizer(\"", name,
              "\"): per_channel needs QuantSpec::channels (the size of axis 0) to create its per-channel state");
  };
  PFQ_CHECK(is_floating(spec.dtype), "make_quantizer(\"", name, "\"): QuantSpec::dtype must be float32 or float64, got ",
            dtype_name(spec.dtype));
  PFQ_CHECK(spec.channels >= 0, "make_quantizer(\"", name, "\"): channels must be >= 0, got ", spec.channels);
  if (name == "minmax") {
    need_bits(1, 8);
    check_fake_quant_options({spec.bits, spec.symmetric, spec.per_channel}, "make_quantizer(\"minmax\")");
    return std::make_unique<MinMaxQuantizer>(spec);
  }
  if (name == "ema") {
    need_bits(2, 8);
    need_channels();
    PFQ_CHECK(spec.ema_decay >= 0 && spec.ema_decay < 1, "make_quantizer(\"ema\"): ema_decay must be in [0, 1), got ",
              spec.ema_decay);
    PFQ_CHECK(spec.calib_batches >= 0, "make_quantizer(\"ema\"): calib_batches must be >= 0, got ", spec.calib_batches);
    return std::make_unique<EmaQuantizer>(spec);
  }
  if (name == "pact") {
    need_bits(1, 8);
    need_channels();
    PFQ_CHECK(!spec.symmetric, "make_quantizer(\"pact\"): PACT quantizes unsigned activations; set symmetric = false");
    PFQ_CHECK(spec.pact_alpha > 0, "make_quantizer(\"pact\"): pact_alpha must be > 0, got ", spec.pact_alpha);
    return std::make_unique<PactQuantizer>(spec);
  }
  if (name == "lsq") {
    need_bits(2, 8);
    need_channels();
    return std::make_unique<LsqQuantizer>(spec);
  }
  if (name == "dorefa") {
    need_bits(1, 8);
    PFQ_CHECK(spec.symmetric, "make_quantizer(\"dorefa\"): DoReFa quantizes weights to [-1, 1]; set symmetric = true");
    return std::make_unique<DorefaQuantizer>(spec);
  }
  {
    QuantizerFactory custom;
    {
      CustomQuantizers& c = custom_quantizers();
      std::lock_guard<std::mutex> lock(c.mu);
      for (const auto& e : c.entries)
        if (e.first == name) custom = e.second;
    }
    if (custom) {
      std::unique_ptr<Quantizer> q = custom(spec);
      PFQ_CHECK(q != nullptr, "make_quantizer(\"", name, "\"): the registered factory returned no quantizer");
      return q;
    }
  }
  std::string known;
  for (const auto& n : quantizer_names()) known += (known.empty() ? "" : ", ") + n;
  PFQ_FAIL("make_quantizer: unknown quantizer \"", name, "\" (known: ", known, ")");
}

}  // namespace pfq::quant
