/// \file
/// quantizer.h — named fake quantizers (minmax, ema, pact, lsq, dorefa) behind one interface,
/// built by make_quantizer(name, spec); register_quantizer adds one written outside pfq.
/// Learnable tensors are leaves with requires_grad that an optimizer takes as ParamRefs;
/// running statistics are named buffers a checkpoint can save. Both are updated in place, so
/// handles taken from parameters()/buffers() stay valid.
/// Left out: QAT model preparation and BN folding (they wrap layers/ modules with these).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "quant/fake_quant.h"
#include "quant/learned_quant.h"

namespace pfq::quant {

/// Named tensors of a quantizer (its parameters or buffers).
using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

/// What a quantizer quantizes to and its hyperparameters.
struct QuantSpec {
  /// Bit width.
  int bits = 8;
  bool symmetric = true;     ///< signed (weights): z = 0; false: unsigned/asymmetric (activations)
  bool per_channel = false;  ///< one range/parameter per index of axis 0
  int64_t channels = 0;      ///< size of axis 0; required with per_channel by ema, pact and lsq
  DType dtype = DType::Float32;  ///< of parameters and buffers (inputs must match)
  double ema_decay = 0.9;        ///< ema: running = decay * running + (1 - decay) * batch
  int64_t calib_batches = 50;    ///< ema: training batches that only observe before quantizing
  double pact_alpha = 6.0;       ///< pact: initial clip value
};

/// Base of the fake quantizers: forward in float with a straight-through gradient; subclasses plug into QAT through
/// make_quantizer / register_quantizer.
class Quantizer {
 public:
  /// A quantizer for `spec`.
  explicit Quantizer(const QuantSpec& spec) : spec_(spec) {}
  virtual ~Quantizer() = default;
  Quantizer(const Quantizer&) = delete;
  Quantizer& operator=(const Quantizer&) = delete;

  /// Fake-quantizes x (any shape; [C, ...] when per_channel). `training` matters to observers.
  virtual Tensor forward(const Tensor& x, bool training) = 0;
  /// The registry name ("minmax", "lsq", ...).
  virtual std::string name() const = 0;
  /// Learnable tensors (PACT's alpha, LSQ's step), trained with the model.
  virtual NamedTensorList parameters() const { return {}; }
  /// State saved in checkpoints (EMA ranges, LSQ's initialised flag).
  virtual NamedTensorList buffers() const { return {}; }
  /// Scale used by the last quantizing forward ([1] or [C]; undefined before one and for dorefa).
  Tensor last_scale() const { return last_scale_; }
  /// For a producer that fuses this quantizer into its own op (folded_bn_train's tail,
  /// quant/folded_bn.h): it hands over the range [lo, hi] ([1] tensors) that forward would
  /// observe on its input, instead of the input. Returns the range to quantize that input with,
  /// or nullopt where forward would return it unquantized; updates the state (ema's running
  /// range, last_scale) as forward(x, training) would. Per-tensor minmax and ema only
  /// (takes_batch_range); the others throw.
  virtual bool takes_batch_range() const { return false; }
  /// The scale and zero point for a batch range (lo, hi) when takes_batch_range(); nullopt otherwise.
  virtual std::optional<std::pair<Tensor, Tensor>> range_from_batch(const Tensor& lo, const Tensor& hi, bool training);
  /// Zero point(s) of the last forward.
  Tensor last_zero_point() const { return last_zero_point_; }
  /// The spec it was built with.
  const QuantSpec& spec() const { return spec_; }

 protected:
  /// The spec as fake_quant() options.
  FakeQuantOptions options() const { return {spec_.bits, spec_.symmetric, spec_.per_channel}; }
  /// Checks dtype against spec.dtype and axis 0 against spec.channels (when set).
  void check_input(const Tensor& x) const;
  /// Checks that lo and hi are [1] tensors of spec.dtype and that this quantizer takes them.
  void check_batch_range(const Tensor& lo, const Tensor& hi) const;

  /// The spec.
  QuantSpec spec_;
  /// Scale and zero point of the last forward.
  ///@{
  Tensor last_scale_, last_zero_point_;
  ///@}
};

/// minmax — the range of the current tensor on every call (the paper's per-layer default for
/// weights): symmetric s = max|x| / (2^(b-1) - 1), z = 0; asymmetric s = (max - min) / (2^b - 1)
/// with [min, max] widened to contain 0, z = round(-min / s). bits == 1: s * sign(x), s = mean|x|.
/// out = (clamp(round(x / s) + z, qmin, qmax) - z) * s; dx = g inside the clip range, else 0.
class MinMaxQuantizer : public Quantizer {
 public:
  using Quantizer::Quantizer;
  Tensor forward(const Tensor& x, bool training) override;
  std::string name() const override { return "minmax"; }
  bool takes_batch_range() const override { return !spec_.per_channel && spec_.bits >= 2; }
  std::optional<std::pair<Tensor, Tensor>> range_from_batch(const Tensor& lo, const Tensor& hi, bool training) override;
};

/// ema — activation observer: per training batch, batch range (lo_b, hi_b) (symmetric:
/// (-max|x|, max|x|)); the first batch sets running = batch, later ones
///   running = decay * running + (1 - decay) * batch.
/// While fewer than calib_batches batches had been observed before the current one, a training
/// call only observes and returns x unchanged; afterwards it quantizes x with the updated
/// running range (the formula of minmax with [running_min, running_max] as the range). Eval
/// freezes the buffers and quantizes with them once calib_batches (and at least one) batches
/// were observed, else returns x. Buffers: running_min, running_max [C], num_batches int64 [].
class EmaQuantizer : public Quantizer {
 public:
  /// Running ranges over [channels] (or one) of spec.dtype.
  explicit EmaQuantizer(const QuantSpec& spec);
  Tensor forward(const Tensor& x, bool training) override;
  std::string name() const override { return "ema"; }
  NamedTensorList buffers() const override;
  /// Training batches observed so far.
  int64_t num_batches() const;
  bool calibrated() const;  ///< quantization switched on
  bool takes_batch_range() const override { return !spec_.per_channel; }
  std::optional<std::pair<Tensor, Tensor>> range_from_batch(const Tensor& lo, const Tensor& hi, bool training) override;

 private:
  /// Folds a training batch's range [lo, hi] into the running range (eval: ignores it); true
  /// when this batch is quantized (calibration is over).
  bool observe(const Tensor& lo, const Tensor& hi, bool training);
  Tensor running_min_, running_max_, num_batches_;
};

/// pact — unsigned activations clipped to a learnable alpha (init spec.pact_alpha):
///   out = round(clip(x, 0, alpha) / s) * s, s = alpha / (2^b - 1)
///   dx = g where 0 <= x < alpha;  dalpha = sum of g where x >= alpha.   Parameter: alpha [1]|[C].
class PactQuantizer : public Quantizer {
 public:
  /// Alpha initialised to spec.pact_alpha.
  explicit PactQuantizer(const QuantSpec& spec);
  Tensor forward(const Tensor& x, bool training) override;
  std::string name() const override { return "pact"; }
  NamedTensorList parameters() const override { return {{"alpha", alpha_}}; }

 private:
  Tensor alpha_;
};

/// lsq — learnable step s (parameter "step" [1]|[C]), set on the first call to
/// 2 * mean|x| / sqrt(Qp); signed (symmetric) grid -2^(b-1)..2^(b-1)-1 or unsigned 0..2^b-1:
///   out = round(clip(x / s, -Qn, Qp)) * s;  dx = g inside;  ds = (round(x/s) - x/s inside,
///   -Qn / Qp at the clip) summed with g, times 1 / sqrt(N * Qp).   Buffer: initialized int64 [].
class LsqQuantizer : public Quantizer {
 public:
  /// The step is initialised from the first batch.
  explicit LsqQuantizer(const QuantSpec& spec);
  Tensor forward(const Tensor& x, bool training) override;
  std::string name() const override { return "lsq"; }
  NamedTensorList parameters() const override { return {{"step", step_}}; }
  NamedTensorList buffers() const override { return {{"initialized", initialized_}}; }

 private:
  Tensor step_, initialized_;
};

/// dorefa — weights: out = 2 * round(n * (tanh(x) / (2 max|tanh(x)|) + 1/2)) / n - 1,
/// n = 2^b - 1, max per tensor or per channel; dx = g * (1 - tanh(x)^2) / max|tanh(x)|
/// (straight through the rounding, the max held constant). Needs symmetric = true.
class DorefaQuantizer : public Quantizer {
 public:
  using Quantizer::Quantizer;
  Tensor forward(const Tensor& x, bool training) override;
  std::string name() const override { return "dorefa"; }
};

/// Builds the quantizer called `name` (one of quantizer_names()). Errors name the quantizer
/// and the offending spec field: unknown name, bits outside the quantizer's range, a missing
/// channel count, a sign the quantizer does not support, bad ema/pact settings.
/// A registered name (register_quantizer) is built by its factory, after the spec checks above
/// that hold for every quantizer (float dtype, channels >= 0); the factory checks the rest.
std::unique_ptr<Quantizer> make_quantizer(const std::string& name, const QuantSpec& spec);
/// The built-in names, then the registered ones in registration order.
std::vector<std::string> quantizer_names();

/// Makes a quantizer written outside pfq available under `name` to make_quantizer, and so to
/// QatConfig::wquant / aquant and prepare_qat (examples/custom_quantizer_qat.cpp). Register
/// before building anything that names it; a name that exists already (built-in or registered)
/// is an error. Thread-safe.
using QuantizerFactory = std::function<std::unique_ptr<Quantizer>(const QuantSpec&)>;
/// Adds a quantizer under `name` for make_quantizer (a custom quantizer for QAT); throws when the name is taken.
void register_quantizer(const std::string& name, QuantizerFactory factory);

}  // namespace pfq::quant
