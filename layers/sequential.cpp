// sequential.cpp — Sequential (sequential.h).
#include "layers/sequential.h"

#include "layers/bn_act.h"

namespace pfq {

Sequential::Sequential(const std::vector<ModulePtr>& modules) {
  for (const auto& m : modules) push_back(m);
}

Sequential& Sequential::push_back(ModulePtr m) { return add(std::to_string(size()), std::move(m)); }

Sequential& Sequential::add(const std::string& name, ModulePtr m) {
  register_module(name, std::move(m));
  return *this;
}

ModulePtr Sequential::operator[](size_t i) const {
  PFQ_CHECK(i < size(), type_name(), "[", i, "]: out of range (", size(), " modules)");
  return named_children()[i].second;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  const auto& ch = named_children();
  for (size_t i = 0; i < ch.size(); ++i) {
    // a, identity, b: the identity skipped and b handed to a (a conv with BN folded fuses the
    // activation after it, quant/qat.h)
    if (i + 2 < ch.size() && ch[i + 1].second->is_identity()) {
      y = ch[i].second->forward_into(y, *ch[i + 2].second);
      i += 2;
      continue;
    }
    // bn, relu / relu6 of the plain layers: one fused op, as in the model blocks (the stems)
    if (i + 1 < ch.size())
      if (auto [bn, act] = fusable_bn_act(ch[i].second, ch[i + 1].second); bn) {
        y = bn->forward_act(y, act);
        ++i;
        continue;
      }
    y = ch[i].second->forward(y);
  }
  return y;
}

Shape Sequential::output_shape(const Shape& in) const {
  Shape s = in;
  for (const auto& [name, m] : named_children()) s = m->output_shape(s);
  return s;
}

std::vector<std::pair<std::string, Shape>> Sequential::child_input_shapes(const Shape& in) const {
  std::vector<std::pair<std::string, Shape>> out;
  Shape s = in;
  for (const auto& [name, m] : named_children()) {
    out.emplace_back(name, s);
    s = m->output_shape(s);
  }
  return out;
}

}  // namespace pfq
