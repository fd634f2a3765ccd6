// optimizer.cpp — parameter validation, gradient checks, zero_grad and the state
// export/import shared by every optimizer (core/optim). The update rules live in sgd.cpp
// and adam.cpp.
#include "core/optim/optimizer.h"

#include <cmath>
#include <map>
#include <set>

#include "core/autograd.h"
#include "core/profiler.h"

namespace pfq::optim {

bool no_decay(const std::string& name, const Tensor& param) {
  static const std::string suffix = ".bias";
  bool bias_name = name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  return bias_name || name == "bias" || param.dim() <= 1;
}

void Optimizer::check_hyper(bool ok, const char* kind, const char* what, double value, const char* expected) {
  PFQ_CHECK(ok, kind, ": invalid ", what, " ", value, " (expected ", expected, ")");
}

Optimizer::Optimizer(const char* kind, std::vector<ParamRef> params, double lr, std::vector<std::string> slot_names,
                     bool per_param_step)
    : kind_(kind), params_(std::move(params)), lr_(0), slot_names_(std::move(slot_names)), per_param_step_(per_param_step) {
  set_lr(lr);
  PFQ_CHECK(!params_.empty(), kind_, ": got an empty parameter list");
  std::set<std::string> seen;
  for (const ParamRef& p : params_) {
    PFQ_CHECK(!p.name.empty(), kind_, ": a parameter has an empty name");
    PFQ_CHECK(seen.insert(p.name).second, kind_, ": parameter name '", p.name, "' appears twice");
    PFQ_CHECK(p.param.defined(), kind_, ": parameter '", p.name, "' is an undefined tensor");
    const Tensor& t = p.param;
    PFQ_CHECK(is_floating(t.dtype()), kind_, ": parameter '", p.name, "' is ", t.describe(), "; only float32/float64 parameters can be optimized");
    PFQ_CHECK(t.requires_grad(), kind_, ": parameter '", p.name, "' does not require grad (call set_requires_grad(true) or leave it out)");
    PFQ_CHECK(t.is_leaf(), kind_, ": parameter '", p.name, "' is not a leaf tensor (it was computed by an op; pass the original parameter)");
    PFQ_CHECK(t.is_contiguous(), kind_, ": parameter '", p.name, "' is not contiguous (", t.describe(), ")");
  }
  slots_.assign(params_.size(), std::vector<Tensor>(slot_names_.size()));
  param_steps_.assign(params_.size(), 0);
}

void Optimizer::set_lr(double lr) {
  check_hyper(std::isfinite(lr) && lr >= 0, kind_, "learning rate", lr, ">= 0");
  lr_ = lr;
}

void Optimizer::zero_grad(bool set_to_none) {
  PFQ_PROFILE("optimizer zero_grad");
  for (ParamRef& p : params_) {
    if (!p.param.grad().defined()) continue;
    if (set_to_none) p.param.set_grad(Tensor());
    else p.param.grad().zero_();
  }
}

void Optimizer::step() {
  PFQ_PROFILE("optimizer step");
  NoGradGuard no_grad;
  // Check every gradient before touching any parameter, so a bad one leaves the model intact.
  std::vector<Tensor> grads(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const ParamRef& p = params_[i];
    Tensor g = p.param.grad();
    if (!g.defined()) continue;
    PFQ_CHECK(g.device() == p.param.device(), kind_, ".step: gradient of '", p.name, "' is on ", g.device().str(),
              ", the parameter on ", p.param.device().str(), " (move the model before building the optimizer)");
    PFQ_CHECK(g.shape() == p.param.shape(), kind_, ".step: gradient of '", p.name, "' has shape ", shape_str(g.shape()),
              ", the parameter ", shape_str(p.param.shape()));
    PFQ_CHECK(g.dtype() == p.param.dtype(), kind_, ".step: gradient of '", p.name, "' is ", dtype_name(g.dtype()),
              ", the parameter ", dtype_name(p.param.dtype()));
    grads[i] = g.contiguous();
  }
  for (size_t i = 0; i < params_.size(); ++i)
    if (grads[i].defined()) update(i, grads[i]);
  ++step_count_;
}

Tensor& Optimizer::slot(size_t i, size_t s, bool* created) {
  Tensor& t = slots_[i][s];
  if (created) *created = !t.defined();
  if (!t.defined()) t = Tensor::zeros(params_[i].param.shape(), params_[i].param.dtype(), params_[i].param.device());
  return t;
}

NamedTensors Optimizer::state_tensors() const {
  NamedTensors out;
  out.emplace_back("step", Tensor::scalar(static_cast<double>(step_count_), DType::Int64));
  for (size_t s = 0; s < slot_names_.size(); ++s)
    for (size_t i = 0; i < params_.size(); ++i)
      if (slots_[i][s].defined()) out.emplace_back(slot_names_[s] + "." + params_[i].name, slots_[i][s].detach().clone());
  if (per_param_step_)
    for (size_t i = 0; i < params_.size(); ++i)
      if (param_steps_[i] > 0)
        out.emplace_back("step." + params_[i].name, Tensor::scalar(static_cast<double>(param_steps_[i]), DType::Int64));
  return out;
}

namespace {
int64_t read_count(const char* kind, const std::string& name, const Tensor& t) {
  PFQ_CHECK(t.numel() == 1, kind, ".load_state_tensors: '", name, "' must hold one step count, got ", t.describe());
  double v = t.item();
  PFQ_CHECK(v >= 0 && v == std::floor(v), kind, ".load_state_tensors: '", name, "' = ", v, " is not a step count");
  return static_cast<int64_t>(v);
}
}  // namespace

void Optimizer::load_state_tensors(const NamedTensors& state) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < params_.size(); ++i) index[params_[i].name] = i;
  int64_t step_count = 0;
  std::vector<std::vector<Tensor>> slots(params_.size(), std::vector<Tensor>(slot_names_.size()));
  std::vector<int64_t> steps(params_.size(), 0);
  std::set<std::string> seen;
  for (const auto& [name, t] : state) {
    PFQ_CHECK(seen.insert(name).second, kind_, ".load_state_tensors: '", name, "' appears twice");
    PFQ_CHECK(t.defined(), kind_, ".load_state_tensors: '", name, "' is an undefined tensor");
    if (name == "step") {
      step_count = read_count(kind_, name, t);
      continue;
    }
    size_t dot = name.find('.');
    std::string prefix = dot == std::string::npos ? name : name.substr(0, dot);
    std::string pname = dot == std::string::npos ? "" : name.substr(dot + 1);
    auto it = index.find(pname);
    PFQ_CHECK(it != index.end(), kind_, ".load_state_tensors: '", name, "' names no parameter of this optimizer (was the checkpoint written for another model?)");
    size_t i = it->second;
    if (per_param_step_ && prefix == "step") {
      steps[i] = read_count(kind_, name, t);
      continue;
    }
    size_t s = 0;
    while (s < slot_names_.size() && slot_names_[s] != prefix) ++s;
    PFQ_CHECK(s < slot_names_.size(), kind_, ".load_state_tensors: '", name, "' is not state of ", kind_, " (unknown kind '", prefix, "')");
    const Tensor& p = params_[i].param;
    PFQ_CHECK(t.shape() == p.shape(), kind_, ".load_state_tensors: '", name, "' has shape ", shape_str(t.shape()),
              " but parameter '", pname, "' has shape ", shape_str(p.shape()));
    Tensor copy = Tensor::empty(p.shape(), p.dtype(), p.device());
    copy.copy_(t);
    slots[i][s] = copy;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    size_t present = 0;
    for (const Tensor& t : slots[i]) present += t.defined();
    PFQ_CHECK(present == 0 || present == slot_names_.size(), kind_, ".load_state_tensors: parameter '", params_[i].name,
              "' has ", present, " of its ", slot_names_.size(), " state tensors");
    if (per_param_step_)
      PFQ_CHECK((present > 0) == (steps[i] > 0), kind_, ".load_state_tensors: parameter '", params_[i].name,
                "' needs both its state tensors and 'step.", params_[i].name, "' (> 0), or neither");
  }
  step_count_ = step_count;
  slots_ = std::move(slots);
  param_steps_ = std::move(steps);
}

}  // namespace pfq::optim
