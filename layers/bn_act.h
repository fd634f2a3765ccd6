// bn_act.h — when a BatchNorm2d and the activation after it run as one fused op
// (BatchNorm2d::forward_act): Sequential and the model blocks ask here (layers/).
#pragma once
#include <memory>
#include <utility>

#include "layers/batchnorm.h"

namespace pfq {

// `bn` as a BatchNorm2d and the activation of `act` when both are still the plain layers the
// builders made (not QAT wrappers or folded / identity stand-ins) and `act` is ReLU or ReLU6:
// then bn->forward_act(x, act) computes act(bn(x)) in one op. {nullptr, BnAct::None} otherwise.
inline std::pair<std::shared_ptr<BatchNorm2d>, BnAct> fusable_bn_act(const ModulePtr& bn, const ModulePtr& act) {
  if (bn->type_name() != "BatchNorm2d") return {nullptr, BnAct::None};
  const std::string a = act->type_name();
  if (a != "ReLU" && a != "ReLU6") return {nullptr, BnAct::None};
  return {std::dynamic_pointer_cast<BatchNorm2d>(bn), a == "ReLU" ? BnAct::ReLU : BnAct::ReLU6};
}

}  // namespace pfq
