// conv_onednn.cpp — float32 convolutions through oneDNN (see conv_backend.h). Weights stay in
// pfq's plain OIHW layout, activations in NCHW or, for geometries marked nhwc, channels-last.
// For NCHW activations oneDNN picks its preferred (blocked) layouts ("any") and the plan
// reorders in and out through per-thread scratch buffers that keep their pages between steps;
// NHWC activations are the primitives' own layout (no reorder), only the weights are
// reordered. Primitives are created once per geometry (JIT compilation is the expensive part)
// and cached under a lock; they execute on the calling thread's stream with oneDNN's
// OpenMP runtime, so omp_set_num_threads / --threads govern them like pfq's own kernels.
#include <dnnl.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/cpu/conv_backend.h"
#include "core/error.h"
#include "core/profiler.h"

namespace pfq::cpu::onednn {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

// Grow-only per-thread buffers, one per role, so reorders never allocate in the steady state.
enum Slot { kSrcSlot, kWeightSlot, kDstSlot, kSlots };
void* scratch(Slot slot, size_t bytes) {
  thread_local std::array<std::vector<float>, kSlots> bufs;
  auto& b = bufs[slot];
  if (b.size() * sizeof(float) < bytes) b.resize((bytes + sizeof(float) - 1) / sizeof(float));
  return b.data();
}

// A copy between the user's plain layout and the primitive's layout; absent when they agree.
struct Reorder {
  memory::desc from, to;
  std::unique_ptr<dnnl::reorder> prim;
  static Reorder make(const memory::desc& from, const memory::desc& to) {
    Reorder r{from, to, nullptr};
    if (from != to) r.prim = std::make_unique<dnnl::reorder>(dnnl::reorder::primitive_desc(engine(), from, engine(), to));
    return r;
  }
  // The buffer the primitive reads: `user` itself or its reordered copy in `slot`.
  void* in(const void* user, Slot slot) const {
    if (!prim) return const_cast<void*>(user);
    PFQ_PROFILE("conv layout reorder");
    void* buf = scratch(slot, to.get_size());
    memory a(from, engine(), const_cast<void*>(user)), b(to, engine(), buf);
    prim->execute(stream(), a, b);
    return buf;
  }
  // Where the primitive writes: `user` itself, or a scratch buffer that out_done() copies back.
  void* out(void* user, Slot slot) const { return prim ? scratch(slot, from.get_size()) : user; }
  void out_done(void* buf, void* user) const {
    if (!prim) return;
    PFQ_PROFILE("conv layout reorder");
    memory a(from, engine(), buf), b(to, engine(), user);
    prim->execute(stream(), a, b);
  }
};

struct Dims {
  memory::desc src, weights, dst, bias;  // pfq's plain layouts
  memory::desc any_src, any_weights, any_dst;
  memory::dims strides, dilates, pad_l, pad_r;
};

// False when oneDNN's geometry rules cannot represent ours.
bool make_dims(const ConvGeom& g, Dims& d) {
  // oneDNN derives the output size from explicit left/right padding; pfq's floor(...) output
  // with symmetric padding corresponds to right padding that may be smaller than the left.
  const int64_t pr_h = (g.OH - 1) * g.sh + (g.KH - 1) * g.dh + 1 - g.H - g.ph;
  const int64_t pr_w = (g.OW - 1) * g.sw + (g.KW - 1) * g.dw + 1 - g.W - g.pw;
  if (pr_h < -64 || pr_w < -64) return false;
  const memory::dims src{g.N, g.C, g.H, g.W}, dst{g.N, g.OC, g.OH, g.OW};
  const memory::dims w = g.groups > 1 ? memory::dims{g.groups, g.ocg(), g.cg(), g.KH, g.KW} : memory::dims{g.OC, g.C, g.KH, g.KW};
  const Tag act = g.nhwc ? Tag::nhwc : Tag::nchw;
  d.src = memory::desc(src, kF32, act);
  d.dst = memory::desc(dst, kF32, act);
  d.weights = memory::desc(w, kF32, g.groups > 1 ? Tag::goihw : Tag::oihw);
  d.bias = memory::desc({g.OC}, kF32, Tag::x);
  d.any_src = g.nhwc ? d.src : memory::desc(src, kF32, Tag::any);
  d.any_dst = g.nhwc ? d.dst : memory::desc(dst, kF32, Tag::any);
  d.any_weights = memory::desc(w, kF32, Tag::any);
  d.strides = {g.sh, g.sw};
  d.dilates = {g.dh - 1, g.dw - 1};
  d.pad_l = {g.ph, g.pw};
  d.pad_r = {pr_h, pr_w};
  return true;
}

dnnl::convolution_forward::primitive_desc forward_pd(const Dims& d, bool bias) {
  using F = dnnl::convolution_forward;
  auto desc = bias ? F::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.any_src, d.any_weights, d.bias,
                             d.any_dst, d.strides, d.dilates, d.pad_l, d.pad_r)
                   : F::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.any_src, d.any_weights,
                             d.any_dst, d.strides, d.dilates, d.pad_l, d.pad_r);
  return F::primitive_desc(desc, engine());
}

enum class Kind { Forward, ForwardBias, BackwardData, BackwardWeights };

struct Plan {
  std::unique_ptr<dnnl::primitive> prim;
  Reorder a, b, out;  // forward: src, weights, dst; backward data: diff_dst, weights, diff_src;
                      // backward weights: src, diff_dst, diff_weights
};

// The primitive descriptor of a backward convolution (B: convolution_backward_data or
// convolution_backward_weights), with the forward's as its hint, as oneDNN requires.
template <typename B>
typename B::primitive_desc backward_pd(const Dims& d) {
  return typename B::primitive_desc(
      typename B::desc(dnnl::algorithm::convolution_direct, d.any_src, d.any_weights, d.any_dst, d.strides, d.dilates, d.pad_l, d.pad_r),
      engine(), forward_pd(d, false));
}

// A plan that runs primitive P of descriptor pd: inputs a and b reordered from pfq's layouts
// into pd's, the output from pd's layout back into pfq's.
template <typename P>
Plan plan_of(const typename P::primitive_desc& pd, const memory::desc& a_user, const memory::desc& a_pd, const memory::desc& b_user,
             const memory::desc& b_pd, const memory::desc& out_pd, const memory::desc& out_user) {
  Plan p;
  p.prim = std::make_unique<P>(pd);
  p.a = Reorder::make(a_user, a_pd);
  p.b = Reorder::make(b_user, b_pd);
  p.out = Reorder::make(out_pd, out_user);
  return p;
}

Plan build_plan(Kind kind, const Dims& d) {
  using Data = dnnl::convolution_backward_data;
  using Weights = dnnl::convolution_backward_weights;
  switch (kind) {
    case Kind::Forward:
    case Kind::ForwardBias: {
      auto pd = forward_pd(d, kind == Kind::ForwardBias);
      return plan_of<dnnl::convolution_forward>(pd, d.src, pd.src_desc(), d.weights, pd.weights_desc(), pd.dst_desc(), d.dst);
    }
    case Kind::BackwardData: {
      auto pd = backward_pd<Data>(d);
      return plan_of<Data>(pd, d.dst, pd.diff_dst_desc(), d.weights, pd.weights_desc(), pd.diff_src_desc(), d.src);
    }
    case Kind::BackwardWeights: {
      auto pd = backward_pd<Weights>(d);
      return plan_of<Weights>(pd, d.src, pd.src_desc(), d.dst, pd.diff_dst_desc(), pd.diff_weights_desc(), d.weights);
    }
  }
  return {};
}

// The cached plan for (geometry, kind); nullptr when oneDNN cannot run it.
const Plan* plan_for(const ConvGeom& g, Kind kind) {
  using Key = std::array<int64_t, 18>;
  static std::mutex mu;
  static std::map<Key, std::unique_ptr<Plan>> cache;
  const Key key{g.N, g.C, g.H, g.W, g.OC, g.KH, g.KW, g.OH, g.OW, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups, g.nhwc, static_cast<int64_t>(kind)};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second.get();
  Dims d;
  std::unique_ptr<Plan> plan;
  if (make_dims(g, d)) {
    try {
      plan = std::make_unique<Plan>(build_plan(kind, d));
    } catch (const dnnl::error& e) {
      if (e.status != dnnl_unimplemented) PFQ_FAIL("oneDNN: cannot set up a convolution: ", e.what());
    }
  }
  return (cache[key] = std::move(plan)).get();
}

void run(const Plan& p, std::unordered_map<int, memory> args) {
  p.prim->execute(stream(), args);
  stream().wait();
}

memory mem(const memory::desc& md, void* ptr) { return memory(md, engine(), ptr); }

// oneDNN 2.6's weight gradient of a strided 1x1 convolution on channels-last activations
// (jit_1x1 with its "reduce to unit stride" copy of the input) is wrong now and then when a
// group has fewer input channels than a SIMD register holds and two or more threads run it:
// measured on AVX2 (2-core AMD EPYC, Debian's libdnnl 2.6.3), 1 to 48% of the calls for 1 to 6
// input channels, entries off by up to 20, never with one thread, never with 8 or more input
// channels, never in NCHW (tests/core/test_conv.cpp "strided 1x1 ..."). Such a gradient is the
// unit-stride one of the input subsampled at the strides, which is what that copy makes; pfq
// makes the copy itself and runs the unit-stride primitive: same arithmetic, no stride path.
bool unit_stride_1x1(const ConvGeom& g) {
  return g.nhwc && g.KH == 1 && g.KW == 1 && g.ph == 0 && g.pw == 0 && (g.sh > 1 || g.sw > 1);
}

// x [N, H, W, C] at rows and columns 0, s, 2s, ... into xs [N, OH, OW, C].
void subsample_nhwc(const ConvGeom& g, const float* x, float* xs) {
  const int64_t rows = g.N * g.OH;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / g.OH, oh = r % g.OH;
    const float* src = x + ((n * g.H + oh * g.sh) * g.W) * g.C;
    float* dst = xs + r * g.OW * g.C;
    for (int64_t ow = 0; ow < g.OW; ++ow) std::copy_n(src + ow * g.sw * g.C, g.C, dst + ow * g.C);
  }
}

// dw of a unit_stride_1x1 geometry: the subsampled input and a 1x1 unit-stride plan.
bool backward_weights_unit_stride(const ConvGeom& g, const float* dy, const float* x, float* dw) {
  ConvGeom u = g;
  u.H = g.OH;
  u.W = g.OW;
  u.sh = u.sw = 1;
  const Plan* p = plan_for(u, Kind::BackwardWeights);
  if (!p) return false;
  // channels-last source and gradient are the primitive's own layouts (make_dims), never reordered
  PFQ_CHECK(!p->a.prim && !p->b.prim, "internal: oneDNN asks to reorder channels-last activations");
  // kSrcSlot: the same role (the weight primitive's source) as in conv2d_backward
  float* xs = static_cast<float*>(scratch(kSrcSlot, static_cast<size_t>(u.N * u.H * u.W * u.C) * sizeof(float)));
  subsample_nhwc(g, x, xs);
  void* dwt = p->out.out(dw, kWeightSlot);
  run(*p, {{DNNL_ARG_SRC, mem(p->a.to, xs)}, {DNNL_ARG_DIFF_DST, mem(p->b.to, const_cast<float*>(dy))},
           {DNNL_ARG_DIFF_WEIGHTS, mem(p->out.from, dwt)}});
  p->out.out_done(dwt, dw);
  return true;
}

}  // namespace

bool conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* b, float* y) {
  const Plan* p = plan_for(g, b ? Kind::ForwardBias : Kind::Forward);
  if (!p) return false;
  void* src = p->a.in(x, kSrcSlot);
  void* wt = p->b.in(w, kWeightSlot);
  void* dst = p->out.out(y, kDstSlot);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mem(p->a.to, src)}, {DNNL_ARG_WEIGHTS, mem(p->b.to, wt)},
                                       {DNNL_ARG_DST, mem(p->out.from, dst)}};
  if (b) args.emplace(DNNL_ARG_BIAS, mem(memory::desc({g.OC}, kF32, Tag::x), const_cast<float*>(b)));
  run(*p, std::move(args));
  p->out.out_done(dst, y);
  return true;
}

bool conv2d_backward(const ConvGeom& g, const float* dy, const float* x, const float* w, float* dx, float* dw) {
  const Plan* pd = dx ? plan_for(g, Kind::BackwardData) : nullptr;
  if (dx && !pd) return false;
  if (dw && unit_stride_1x1(g)) {
    if (!backward_weights_unit_stride(g, dy, x, dw)) return false;
    dw = nullptr;  // done; dx (channels-last: no reorder of dy to share) below
  }
  const Plan* pw = dw ? plan_for(g, Kind::BackwardWeights) : nullptr;
  if (dw && !pw) return false;
  const void* ddst_data = nullptr;  // dy as the data primitive read it (kDstSlot or dy itself)
  if (pd) {
    void* ddst = pd->a.in(dy, kDstSlot);
    void* wt = pd->b.in(w, kWeightSlot);
    void* dsrc = pd->out.out(dx, kSrcSlot);
    run(*pd, {{DNNL_ARG_DIFF_DST, mem(pd->a.to, ddst)}, {DNNL_ARG_WEIGHTS, mem(pd->b.to, wt)}, {DNNL_ARG_DIFF_SRC, mem(pd->out.from, dsrc)}});
    pd->out.out_done(dsrc, dx);
    ddst_data = ddst;
  }
  if (pw) {
    void* src = pw->a.in(x, kSrcSlot);
    // The weight-gradient primitive usually wants dy in the same layout: reorder it once.
    void* ddst = ddst_data && pd->a.to == pw->b.to ? const_cast<void*>(ddst_data) : pw->b.in(dy, kDstSlot);
    void* dwt = pw->out.out(dw, kWeightSlot);
    run(*pw, {{DNNL_ARG_SRC, mem(pw->a.to, src)}, {DNNL_ARG_DIFF_DST, mem(pw->b.to, ddst)}, {DNNL_ARG_DIFF_WEIGHTS, mem(pw->out.from, dwt)}});
    pw->out.out_done(dwt, dw);
  }
  return true;
}

bool can_run(const ConvGeom& g) { return plan_for(g, Kind::Forward) != nullptr; }

bool conv2d_backward_input(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  return conv2d_backward(g, dy, nullptr, w, dx, nullptr);
}

bool conv2d_backward_weight(const ConvGeom& g, const float* dy, const float* x, float* dw) {
  return conv2d_backward(g, dy, x, nullptr, nullptr, dw);
}

}  // namespace pfq::cpu::onednn
