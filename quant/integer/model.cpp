// model.cpp — running the integer graph on CPU and its file format (quant/integer/model.h,
// docs/integer-format.md): safetensors tensors named "<node>.<field>" plus the graph as JSON in
// the metadata; loading validates every node, input reference, dtype and shape.
#include "quant/integer/model.h"

#include <cmath>
#include <map>
#include <sstream>

#include "core/io/safetensors.h"
#include "core/ops.h"
#include "quant/integer/kernels.h"

namespace pfq::quant {
namespace {

struct Value {
  Tensor t;  // int8 or int32, [N, C, H, W] or [N, C]
  int32_t zp = 0;
};

Tensor run_requant(const IntNode& n, const std::vector<const Value*>& in) {
  const Shape shape = in[0]->t.shape();
  const int64_t N = shape[0], C = shape[1], P = in[0]->t.numel() / (N * C);
  Tensor out = Tensor::empty(shape, DType::Int8);
  int8_t* o = out.data<int8_t>();
  const int F = n.frac_bits;
#pragma omp parallel for schedule(static) if (N * C * P > 32768)
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    for (int64_t p = 0; p < P; ++p) {
      int64_t u = 0;
      for (size_t t = 0; t < n.terms.size(); ++t) {
        const IntTerm& term = n.terms[t];
        const Tensor& v = in[t]->t;
        const int64_t idx = nc * P + p;
        const int64_t x = (v.dtype() == DType::Int8 ? int64_t{v.data<int8_t>()[idx]} : int64_t{v.data<int32_t>()[idx]}) - term.zero_point;
        u += cpu::shift_round(x * term.multiplier.data<int32_t>()[c], term.shift.data<int32_t>()[c]);
        if (term.bias.defined()) u += term.bias.data<int32_t>()[c];
        if (term.correction.defined()) u += term.correction.data<int32_t>()[c * P + p];
      }
      int64_t q = n.zero_point + cpu::shift_round(u, F);
      q = q < n.qmin ? n.qmin : (q > n.qmax ? n.qmax : q);
      o[nc * P + p] = static_cast<int8_t>(q);
    }
  }
  return out;
}

}  // namespace

const IntNode& IntModel::node(const std::string& name) const {
  for (const auto& n : nodes)
    if (n.name == name) return n;
  PFQ_FAIL("integer model: no node named '", name, "'");
}

Tensor IntModel::forward(const Tensor& x_in, bool reference, std::map<std::string, Tensor>* trace) const {
  PFQ_CHECK(x_in.dim() == 4 && x_in.size(1) == input_shape[0] && x_in.size(2) == input_shape[1] && x_in.size(3) == input_shape[2],
            "integer model: expected input [N, ", input_shape[0], ", ", input_shape[1], ", ", input_shape[2], "], got ",
            x_in.describe());
  PFQ_CHECK(!nodes.empty() && nodes.back().op == "dequantize", "integer model: the graph does not end in dequantize");
  const Tensor x = x_in.to(Device::cpu()).to(DType::Float32).contiguous();
  const int64_t N = x.size(0);
  std::map<std::string, Value> vals;
  for (const IntNode& n : nodes) {
    std::vector<const Value*> in;
    for (const auto& name : n.inputs)
      if (name != "input") in.push_back(&vals.at(name));
    Value out;
    out.zp = n.zero_point;
    if (n.op == "quantize") {
      out.t = Tensor::empty(x.shape(), DType::Int8);
      const float* xp = x.data<float>();
      int8_t* q = out.t.data<int8_t>();
      // the fake quantizer's own arithmetic: clamp(round_half_even(x / s) + z), in float32
      const float s = n.scale;
      for (int64_t i = 0; i < x.numel(); ++i) {
        float v = std::nearbyint(xp[i] / s) + static_cast<float>(n.zero_point);
        v = v < n.qmin ? n.qmin : (v > n.qmax ? n.qmax : v);
        q[i] = static_cast<int8_t>(v);
      }
    } else if (n.op == "conv2d") {
      const Tensor& xi = in[0]->t;
      cpu::IntConvGeom g;
      g.N = N;
      g.IC = n.in_channels;
      g.H = xi.size(2);
      g.W = xi.size(3);
      g.OC = n.out_channels;
      g.KH = n.kernel[0];
      g.KW = n.kernel[1];
      g.stride_h = n.stride[0];
      g.stride_w = n.stride[1];
      g.pad_h = n.padding[0];
      g.pad_w = n.padding[1];
      g.dil_h = n.dilation[0];
      g.dil_w = n.dilation[1];
      g.groups = n.groups;
      PFQ_CHECK(xi.size(1) == g.IC, "integer model: conv '", n.name, "' expects ", g.IC, " channels, got ", xi.describe());
      out.t = Tensor::empty({N, g.OC, g.OH(), g.OW()}, DType::Int32);
      out.zp = 0;
      (reference ? cpu::conv2d_s8_naive : cpu::conv2d_s8_im2col)(g, xi.data<int8_t>(), in[0]->zp, n.weight.data<int8_t>(),
                                                                 out.t.data<int32_t>());
    } else if (n.op == "linear") {
      const Tensor& xi = in[0]->t;
      PFQ_CHECK(xi.dim() == 2 && xi.size(1) == n.in_channels, "integer model: linear '", n.name, "' expects [N, ",
                n.in_channels, "], got ", xi.describe());
      out.t = Tensor::empty({N, n.out_channels}, DType::Int32);
      out.zp = 0;
      (reference ? cpu::linear_s8_naive : cpu::linear_s8)(N, n.in_channels, n.out_channels, xi.data<int8_t>(), in[0]->zp,
                                                          n.weight.data<int8_t>(), out.t.data<int32_t>());
    } else if (n.op == "global_avgpool") {
      const Tensor& xi = in[0]->t;
      PFQ_CHECK(xi.dim() == 4 && xi.size(2) == n.kernel[0] && xi.size(3) == n.kernel[1], "integer model: '", n.name,
                "' was built for ", n.kernel[0], "x", n.kernel[1], " maps, got ", xi.describe());
      out.t = Tensor::empty({N, xi.size(1)}, DType::Int32);
      out.zp = 0;
      cpu::global_sum_s8(N, xi.size(1), n.kernel[0] * n.kernel[1], xi.data<int8_t>(), in[0]->zp, out.t.data<int32_t>());
    } else if (n.op == "maxpool") {
      const Tensor& xi = in[0]->t;
      PFQ_CHECK(xi.dim() == 4 && xi.dtype() == DType::Int8, "integer model: maxpool '", n.name, "' needs int8 [N, C, H, W], got ",
                xi.describe());
      const int64_t OH = conv_out_size(xi.size(2), n.kernel[0], n.stride[0], n.padding[0], 1);
      const int64_t OW = conv_out_size(xi.size(3), n.kernel[1], n.stride[1], n.padding[1], 1);
      out.t = Tensor::empty({N, xi.size(1), OH, OW}, DType::Int8);
      out.zp = in[0]->zp;  // max keeps the input's grid
      cpu::max_pool_s8(N, xi.size(1), xi.size(2), xi.size(3), n.kernel[0], n.kernel[1], n.stride[0], n.stride[1], n.padding[0],
                       n.padding[1], OH, OW, xi.data<int8_t>(), out.t.data<int8_t>());
    } else if (n.op == "requant") {
      out.t = run_requant(n, in);
    } else if (n.op == "dequantize") {
      const Tensor& v = in[0]->t;
      const int64_t C = v.size(1);
      Tensor logits = Tensor::empty({N, C}, DType::Float32);
      for (int64_t i = 0; i < N * C; ++i) {
        const int64_t c = i % C;
        const int64_t q = (v.dtype() == DType::Int8 ? int64_t{v.data<int8_t>()[i]} : int64_t{v.data<int32_t>()[i]}) -
                          n.input_zero_point;
        logits.data<float>()[i] = static_cast<float>(static_cast<double>(n.out_scale.data<float>()[c]) * static_cast<double>(q) +
                                                     static_cast<double>(n.out_bias.data<float>()[c]));
      }
      return logits;
    } else {
      PFQ_FAIL("integer model: unknown op '", n.op, "' in node '", n.name, "'");
    }
    if (trace && (n.op == "quantize" || n.op == "requant" || n.op == "maxpool")) (*trace)[n.name] = out.t;
    vals[n.name] = std::move(out);
  }
  PFQ_FAIL("integer model: no dequantize node reached");
}

std::string IntModel::summary() const {
  std::ostringstream s;
  int64_t convs = 0, linears = 0, adds = 0, wbits = 0;
  for (const auto& n : nodes) {
    convs += n.op == "conv2d";
    linears += n.op == "linear";
    adds += n.op == "requant" && n.terms.size() == 2;
    if (n.weight.defined()) wbits += n.weight.numel() * n.weight_bits;
  }
  s << model.arch << " integer model: " << nodes.size() << " nodes (" << convs << " conv2d, " << linears << " linear, " << adds
    << " residual adds), " << wbits / 8.0 / 1024.0 << " KiB of weights at their bit widths";
  return s.str();
}

}  // namespace pfq::quant
