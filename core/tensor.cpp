// tensor.cpp — Tensor creation, metadata, copies between devices and dtypes, printing. On CUDA,
// fill_/copy_/add_/mul_ run core/cuda kernels (kernels.h); random fills are CPU only.
#include "core/tensor.h"

#include <cstring>
#include <sstream>

#include "core/autograd.h"
#include "core/layout.h"
#include "core/profiler.h"
#include "core/cpu/elementwise.h"
#include "core/cuda/kernels.h"

namespace pfq {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (auto d : shape) PFQ_CHECK(d >= 0, "Tensor::empty: negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, dtype);
  PFQ_DISPATCH_ALL(dtype, "arange", [&] {
    auto* p = t.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(i);
  });
  return t;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  PFQ_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector: ", values.size(),
            " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, DTypeOf<T>::value);
  if (!values.empty()) std::memcpy(t.data<T>(), values.data(), values.size() * sizeof(T));
  return t;
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector<int64_t>(const std::vector<int64_t>&, const Shape&);
template Tensor Tensor::from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&);
template Tensor Tensor::from_vector<int8_t>(const std::vector<int8_t>&, const Shape&);
template Tensor Tensor::from_vector<int32_t>(const std::vector<int32_t>&, const Shape&);

Tensor Tensor::rand(const Shape& shape, Generator& g, double lo, double hi, DType dtype) {
  Tensor t = empty(shape, dtype);
  PFQ_DISPATCH_FLOAT(dtype, "rand", [&] {
    auto* p = t.data<scalar_t>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<scalar_t>(g.uniform(lo, hi));
  });
  return t;
}

Tensor Tensor::randn(const Shape& shape, Generator& g, double mean, double std, DType dtype) {
  Tensor t = empty(shape, dtype);
  PFQ_DISPATCH_FLOAT(dtype, "randn", [&] {
    auto* p = t.data<scalar_t>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<scalar_t>(mean + std * g.normal());
  });
  return t;
}

Tensor Tensor::bernoulli(const Shape& shape, double prob, Generator& g, DType dtype) {
  PFQ_CHECK(prob >= 0 && prob <= 1, "bernoulli: probability ", prob, " outside [0, 1]");
  Tensor t = empty(shape, dtype);
  PFQ_DISPATCH_ALL(dtype, "bernoulli", [&] {
    auto* p = t.data<scalar_t>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<scalar_t>(g.uniform() < prob ? 1 : 0);
  });
  return t;
}

int64_t Tensor::size(int64_t d) const {
  int64_t nd = dim();
  int64_t dd = d < 0 ? d + nd : d;
  PFQ_CHECK(dd >= 0 && dd < nd, "size(", d, ") on a tensor of shape ", shape_str(shape()));
  return impl().shape[dd];
}

bool Tensor::is_contiguous() const {
  const auto& s = impl().shape;
  const auto& st = impl().strides;
  int64_t expected = 1;
  for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
    if (s[i] != 1 && st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(storage()->data()) + offset() * dtype_size(dtype());
}

double Tensor::item() const {
  PFQ_CHECK(numel() == 1, "item() on a tensor of shape ", shape_str(shape()), ": expected exactly one element");
  Tensor c = device().is_cpu() ? *this : to(Device::cpu());
  return PFQ_DISPATCH_ALL(c.dtype(), "item", [&]() -> double { return static_cast<double>(*c.data<scalar_t>()); });
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = (device().is_cpu() ? *this : to(Device::cpu())).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<int8_t> Tensor::to_vector<int8_t>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

namespace {
// y += a * x over n contiguous elements.
template <typename T>
void axpy(int64_t n, T a, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n > cpu::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// A contiguous copy of `src` with dtype `dt` on src's device, outside autograd.
Tensor copy_as(const Tensor& src, DType dt) {
  Tensor out = Tensor::empty(src.shape(), dt, src.device());
  out.copy_(src);
  return out;
}
}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  PFQ_PROFILE("copy");
  Tensor out = copy_as(*this, dtype());
  return record("clone", out, {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor src = detach().contiguous();
  Tensor out = Tensor::empty(shape(), dtype(), dev);
  const size_t nbytes = numel() * dtype_size(dtype());
  if (nbytes > 0) {
    if (device().is_cpu()) cuda::copy_host_to_device(out.raw_data(), src.raw_data(), nbytes, dev.index);
    else if (dev.is_cpu()) cuda::copy_device_to_host(out.raw_data(), src.raw_data(), nbytes, device().index);
    else PFQ_FAIL("to(", dev.str(), "): copies between two GPUs go through the CPU: call .to(cpu) first");
  }
  Device from = device();
  return record("to_device", out, {*this}, [from](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = copy_as(*this, dt);
  DType from = dtype();
  if (!is_floating(dt) || !is_floating(from)) return out;
  return record("to_dtype", out, {*this}, [from](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
}

Tensor& Tensor::fill_(double value) {
  if (device().is_cuda()) {
    cuda::fill(*this, value);  // any dtype, any strides
    return *this;
  }
  PFQ_DISPATCH_ALL(dtype(), "fill_", [&] {
    const scalar_t v = static_cast<scalar_t>(value);
    if (is_contiguous()) {
      scalar_t* p = data<scalar_t>();
      std::fill(p, p + numel(), v);
      return;
    }
    auto* base = static_cast<scalar_t*>(storage()->data());
    cpu::for_each_run<1>(shape(), {&strides()}, {offset()}, [&](auto off, auto st, int64_t len) {
      for (int64_t i = 0; i < len; ++i) base[off[0] + i * st[0]] = v;
    });
  });
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  PFQ_CHECK(src.shape() == shape(), "copy_: source shape ", shape_str(src.shape()), " differs from destination ", shape_str(shape()));
  if (device().is_cuda() || src.device().is_cuda()) {
    // Cross-device: move the source first (to() copies through a contiguous buffer), then
    // convert/scatter on the destination's device. Any dtypes, any strides on both sides.
    Tensor s = src.detach();
    if (s.device() != device()) s = s.to(device());
    if (device().is_cpu()) return copy_(s);
    cuda::copy(s, *this);
    return *this;
  }
  if (is_contiguous() && is_strictly_channels_last(src) && src.dtype() == dtype() && is_floating(dtype())) {
    const Shape& s = shape();  // channels-last -> NCHW: a transpose per image
    PFQ_DISPATCH_FLOAT(dtype(), "copy_", [&] { cpu::nhwc_to_nchw<scalar_t>(s[0], s[1], s[2] * s[3], src.data<scalar_t>(), data<scalar_t>()); });
    return *this;
  }
  if (is_contiguous()) {
    PFQ_DISPATCH_ALL(dtype(), "copy_", [&] {
      using TO = scalar_t;
      PFQ_DISPATCH_ALL(src.dtype(), "copy_", [&] {
        cpu::map_unary<TO, scalar_t>(src, *this, [](scalar_t v) { return v; });
      });
    });
    return *this;
  }
  // Strided destination: copy through a contiguous temporary element by element.
  Tensor tmp = Tensor::empty(shape(), dtype());
  tmp.copy_(src);
  PFQ_DISPATCH_ALL(dtype(), "copy_", [&] {
    auto* base = static_cast<scalar_t*>(storage()->data());
    const scalar_t* p = tmp.data<scalar_t>();
    int64_t pos = 0;
    cpu::for_each_run<1>(shape(), {&strides()}, {offset()}, [&](auto off, auto st, int64_t len) {
      for (int64_t i = 0; i < len; ++i) base[off[0] + i * st[0]] = p[pos + i];
      pos += len;
    });
  });
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  PFQ_CHECK(other.shape() == shape() && other.dtype() == dtype() && other.device() == device(),
            "add_: expected a tensor like ", describe(), ", got ", other.describe());
  PFQ_CHECK(is_contiguous() || is_channels_last(*this), "add_: destination must be contiguous or channels-last");
  // other in this tensor's layout (a strided view aliasing *this must not be read while written)
  Tensor o = is_contiguous() ? other.contiguous() : channels_last_copy(other);
  if (device().is_cuda()) {
    PFQ_CHECK(is_floating(dtype()), "add_: expected a float32 or float64 tensor, got ", describe());
    Tensor self = flat_view(*this);
    cuda::map_binary(self, flat_view(o), self, fn::AddScaled{alpha});
    return *this;
  }
  PFQ_DISPATCH_FLOAT(dtype(), "add_", [&] { axpy<scalar_t>(numel(), static_cast<scalar_t>(alpha), o.data<scalar_t>(), data<scalar_t>()); });
  return *this;
}

Tensor& Tensor::mul_(double factor) {
  PFQ_CHECK(is_contiguous(), "mul_: expected a contiguous tensor, got ", describe());
  if (device().is_cuda()) {
    PFQ_CHECK(is_floating(dtype()), "mul_: expected a float32 or float64 tensor, got ", describe());
    cuda::map_unary(*this, *this, fn::MulScalar{factor});
    return *this;
  }
  PFQ_DISPATCH_FLOAT(dtype(), "mul_", [&] {
    scalar_t* p = data<scalar_t>();
    const scalar_t f = static_cast<scalar_t>(factor);
    for (int64_t i = 0, n = numel(); i < n; ++i) p[i] *= f;
  });
  return *this;
}

Tensor& Tensor::set_requires_grad(bool r) {
  PFQ_CHECK(!r || is_floating(dtype()), "requires_grad on a ", dtype_name(dtype()), " tensor: only float tensors have gradients");
  PFQ_CHECK(is_leaf(), "set_requires_grad on a non-leaf tensor (use detach() first)");
  impl().requires_grad = r;
  return *this;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device().str();
}

std::string Tensor::str(int64_t max_elems) const {
  std::ostringstream os;
  os << describe() << " {";
  Tensor c = to(Device::cpu()).detach().contiguous();
  int64_t n = std::min<int64_t>(numel(), max_elems);
  PFQ_DISPATCH_ALL(c.dtype(), "str", [&] {
    for (int64_t i = 0; i < n; ++i) os << (i ? ", " : "") << +c.data<scalar_t>()[i];
  });
  if (numel() > n) os << ", ...";
  os << "}";
  return os.str();
}

}  // namespace pfq
