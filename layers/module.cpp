// module.cpp — registration, traversal, state-dict loading and placement of Module (module.h).
#include "layers/module.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "core/autograd.h"
#include "core/random.h"

namespace pfq {

std::string join_name(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::string pair_str(const std::array<int64_t, 2>& p) {
  // Appended piece by piece: GCC 12's -Wrestrict misfires on "(" + std::to_string(...).
  std::string s = "(";
  s += std::to_string(p[0]);
  s += ", ";
  s += std::to_string(p[1]);
  s += ")";
  return s;
}

namespace {

const Tensor* find(const NamedTensors& v, const std::string& name) {
  for (const auto& [n, t] : v)
    if (n == name) return &t;
  return nullptr;
}

std::string names_of(const NamedTensors& v) {
  std::string s;
  for (const auto& [n, t] : v) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "(none)" : s;
}

std::string list(const std::vector<std::string>& v, size_t max_items = 20) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < max_items; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > max_items) s += ", ... (" + std::to_string(v.size()) + " in all)";
  return s;
}

// Points `dst`'s TensorImpl at `src`'s data so every handle to `dst` sees the new data.
void retarget(const Tensor& dst, const Tensor& src) {
  TensorImpl& d = dst.impl();
  const TensorImpl& s = src.impl();
  d.storage = s.storage;
  d.offset = s.offset;
  d.shape = s.shape;
  d.strides = s.strides;
  d.dtype = s.dtype;
  d.grad.reset();
  d.grad_fn.reset();
}

}  // namespace

Shape Module::output_shape(const Shape& in) const { return in; }

int64_t Module::macs(const Shape& in) const {
  int64_t total = 0;
  for (const auto& [name, shape] : child_input_shapes(in)) total += child(name)->macs(shape);
  return total;
}

std::vector<std::pair<std::string, Shape>> Module::child_input_shapes(const Shape& in) const {
  PFQ_CHECK(children_.empty(), type_name(), " has child modules but no shape propagation (child_input_shapes) for input ",
            shape_str(in), ": override it so summaries and MAC counts can see inside");
  return {};
}

void Module::add_child(const std::string& name, ModulePtr m) {
  PFQ_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name(), ": invalid module name '", name,
            "' (must be non-empty without '.')");
  PFQ_CHECK(m, type_name(), ": register_module('", name, "') with a null module");
  PFQ_CHECK(!has_child(name) && !has_parameter(name) && !has_buffer(name), type_name(), ": name '", name,
            "' is already registered");
  children_.emplace_back(name, std::move(m));
}

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  PFQ_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name(), ": invalid parameter name '", name, "'");
  PFQ_CHECK(t.defined(), type_name(), ": register_parameter('", name, "') with an undefined tensor (omit optional parameters)");
  PFQ_CHECK(!has_child(name) && !has_parameter(name) && !has_buffer(name), type_name(), ": name '", name,
            "' is already registered");
  PFQ_CHECK(is_floating(t.dtype()), type_name(), ": parameter '", name, "' must be floating, got ", dtype_name(t.dtype()));
  Tensor leaf = t.is_leaf() ? t : t.detach();
  leaf.set_requires_grad(true);
  params_.emplace_back(name, leaf);
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  PFQ_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name(), ": invalid buffer name '", name, "'");
  PFQ_CHECK(t.defined(), type_name(), ": register_buffer('", name, "') with an undefined tensor");
  PFQ_CHECK(!has_child(name) && !has_parameter(name) && !has_buffer(name), type_name(), ": name '", name,
            "' is already registered");
  // A plain leaf is kept as the same handle, so whoever registered it (e.g. a quantizer's running
  // range) sees the module's to(device)/to(dtype) moves; anything with a graph is detached first.
  Tensor b = t.is_leaf() && !t.requires_grad() ? t : t.detach();
  buffers_.emplace_back(name, b);
  return buffers_.back().second;
}

ModulePtr Module::replace_module(const std::string& name, ModulePtr m) {
  const size_t dot = name.rfind('.');
  if (dot != std::string::npos) return submodule(name.substr(0, dot)).replace_module(name.substr(dot + 1), std::move(m));
  PFQ_CHECK(m, type_name(), ": replace_module('", name, "') with a null module");
  for (auto& [n, c] : children_)
    if (n == name) {
      ModulePtr old = c;
      c = std::move(m);
      return old;
    }
  PFQ_FAIL(type_name(), ": replace_module: no child named '", name, "'");
}

void Module::set_parameter(const std::string& name, Tensor t) {
  PFQ_CHECK(t.defined() && is_floating(t.dtype()), type_name(), ": set_parameter('", name, "') needs a defined float tensor");
  Tensor leaf = t.is_leaf() ? t : t.detach();
  leaf.set_requires_grad(true);
  parameter(name) = leaf;
}

void Module::set_buffer(const std::string& name, Tensor t) {
  PFQ_CHECK(t.defined(), type_name(), ": set_buffer('", name, "') with an undefined tensor");
  buffer(name) = t.detach();
}

bool Module::has_parameter(const std::string& name) const { return find(params_, name) != nullptr; }
bool Module::has_buffer(const std::string& name) const { return find(buffers_, name) != nullptr; }

const Tensor& Module::parameter(const std::string& name) const {
  const Tensor* t = find(params_, name);
  PFQ_CHECK(t, type_name(), ": no parameter '", name, "' (has: ", names_of(params_), ")");
  return *t;
}
Tensor& Module::parameter(const std::string& name) {
  return const_cast<Tensor&>(static_cast<const Module*>(this)->parameter(name));
}
const Tensor& Module::buffer(const std::string& name) const {
  const Tensor* t = find(buffers_, name);
  PFQ_CHECK(t, type_name(), ": no buffer '", name, "' (has: ", names_of(buffers_), ")");
  return *t;
}
Tensor& Module::buffer(const std::string& name) {
  return const_cast<Tensor&>(static_cast<const Module*>(this)->buffer(name));
}

bool Module::has_child(const std::string& name) const {
  return std::any_of(children_.begin(), children_.end(), [&](const auto& c) { return c.first == name; });
}

ModulePtr Module::child(const std::string& name) const {
  for (const auto& [n, c] : children_)
    if (n == name) return c;
  std::string have;
  for (const auto& [n, c] : children_) have += (have.empty() ? "" : ", ") + n;
  PFQ_FAIL(type_name(), ": no child module '", name, "' (has: ", have.empty() ? "(none)" : have, ")");
}

Module& Module::submodule(const std::string& path) {
  Module* m = this;
  std::string rest = path;
  while (!rest.empty()) {
    const size_t dot = rest.find('.');
    const std::string head = rest.substr(0, dot);
    PFQ_CHECK(m->has_child(head), "submodule('", path, "'): ", m->type_name(), " has no child '", head, "'");
    m = m->child(head).get();
    rest = dot == std::string::npos ? "" : rest.substr(dot + 1);
  }
  return *m;
}

void Module::collect(const std::string& prefix, NamedTensors& out, bool params, bool buffers) const {
  if (params)
    for (const auto& [n, t] : params_) out.emplace_back(join_name(prefix, n), t);
  if (buffers)
    for (const auto& [n, t] : buffers_) out.emplace_back(join_name(prefix, n), t);
  for (const auto& [n, c] : children_) c->collect(join_name(prefix, n), out, params, buffers);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out, true, false);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", out, false, true);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out;
  // Iterative pre-order walk (deep models must not recurse on the stack needlessly).
  std::vector<std::pair<std::string, const Module*>> stack{{"", this}};
  while (!stack.empty()) {
    auto [prefix, m] = stack.back();
    stack.pop_back();
    out.emplace_back(prefix, m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(join_name(prefix, it->first), it->second.get());
  }
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  for (auto& [n, m] : static_cast<const Module*>(this)->named_modules()) out.emplace_back(n, const_cast<Module*>(m));
  return out;
}

std::map<std::string, std::string> Module::generator_states() const {
  std::map<std::string, std::string> out;
  // own_generator() is non-const (it hands out the generator to draw from); state() only reads
  for (auto& [name, m] : named_modules())
    if (const Generator* g = const_cast<Module*>(m)->own_generator()) out[name] = g->state();
  return out;
}

void Module::set_generator_states(const std::map<std::string, std::string>& states, const std::string& what) {
  std::map<std::string, Module*> by_path;
  for (auto& [name, m] : named_modules()) by_path[name] = m;
  for (const auto& [name, state] : states) {
    auto it = by_path.find(name);
    PFQ_CHECK(it != by_path.end() && it->second->own_generator(), what, ": random state saved for module '", name,
              "', which ", it == by_path.end() ? "the model does not have" : "draws no random numbers",
              " (the checkpoint does not match this architecture)");
    it->second->own_generator()->set_state(state);
  }
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  for (const auto& [prefix, m] : named_modules()) {
    for (const auto& [n, t] : m->params_) out.emplace_back(join_name(prefix, n), t.detach());
    for (const auto& [n, t] : m->buffers_) out.emplace_back(join_name(prefix, n), t.detach());
  }
  return out;
}

LoadResult Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  return load_state_dict(NamedTensors(state.begin(), state.end()), strict);
}

LoadResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  std::map<std::string, const Tensor*> given;
  for (const auto& [n, t] : state) {
    PFQ_CHECK(given.emplace(n, &t).second, "load_state_dict: key '", n, "' appears twice in the state dict");
    PFQ_CHECK(t.defined(), "load_state_dict: key '", n, "' holds an undefined tensor");
  }
  LoadResult res;
  std::vector<std::string> mismatches;
  std::vector<std::pair<Tensor, const Tensor*>> copies;
  std::set<std::string> mine;
  for (const auto& [n, t] : state_dict()) {
    mine.insert(n);
    auto it = given.find(n);
    if (it == given.end()) {
      res.missing_keys.push_back(n);
      continue;
    }
    const Tensor& src = *it->second;
    if (src.shape() != t.shape()) {
      mismatches.push_back(n + ": checkpoint " + shape_str(src.shape()) + " vs model " + shape_str(t.shape()));
      continue;
    }
    if (is_floating(t.dtype()) != is_floating(src.dtype())) {
      mismatches.push_back(n + ": checkpoint dtype " + dtype_name(src.dtype()) + " vs model " + dtype_name(t.dtype()));
      continue;
    }
    copies.emplace_back(t, &src);
  }
  for (const auto& [n, t] : state)
    if (!mine.count(n)) res.unexpected_keys.push_back(n);
  std::ostringstream err;
  if (!mismatches.empty()) err << "\n  size/dtype mismatch: " << list(mismatches);
  if (strict && !res.missing_keys.empty()) err << "\n  missing keys: " << list(res.missing_keys);
  if (strict && !res.unexpected_keys.empty()) err << "\n  unexpected keys: " << list(res.unexpected_keys);
  PFQ_CHECK(err.str().empty(), "load_state_dict into ", type_name(), " failed (nothing was loaded):", err.str(),
            "\n  hint: was the checkpoint saved from the same architecture (and the same channel counts after pruning)?");
  NoGradGuard ng;
  for (auto& [dst, src] : copies) dst.copy_(src->dtype() == dst.dtype() ? *src : src->to(dst.dtype()));
  return res;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

Module& Module::to(Device device) {
  for (const auto& [prefix, m] : named_modules())
    for (NamedTensors* v : {&const_cast<Module*>(m)->params_, &const_cast<Module*>(m)->buffers_})
      for (auto& [n, t] : *v)
        if (t.device() != device) retarget(t, t.detach().to(device));
  return *this;
}

Module& Module::to(DType dtype) {
  PFQ_CHECK(is_floating(dtype), type_name(), ".to(", dtype_name(dtype), "): modules convert only to float32 or float64");
  for (const auto& [prefix, m] : named_modules())
    for (NamedTensors* v : {&const_cast<Module*>(m)->params_, &const_cast<Module*>(m)->buffers_})
      for (auto& [n, t] : *v)
        if (is_floating(t.dtype()) && t.dtype() != dtype) retarget(t, t.detach().to(dtype));
  return *this;
}

void Module::zero_grad() {
  for (auto& [n, t] : named_parameters()) t.set_grad(Tensor());
}

std::string Module::repr() const {
  std::ostringstream os;
  os << type_name() << "(" << extra_repr();
  if (!children_.empty()) {
    os << "\n";
    for (const auto& [n, c] : children_) {
      std::string sub = c->repr(), indented;
      for (char ch : sub) indented += ch == '\n' ? std::string("\n  ") : std::string(1, ch);
      os << "  (" << n << "): " << indented << "\n";
    }
  }
  os << ")";
  return os.str();
}

}  // namespace pfq
