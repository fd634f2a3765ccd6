// op_cases.cpp — the rows of the op-case table (op_cases.h).
#include "tests/op_cases.h"

#include "core/dist/sync_stats.h"

#include "core/layout.h"

namespace pfq::test {
namespace {

// A constant on the device of `ref` (integer targets keep their dtype).
Tensor on(const Tensor& t, const Tensor& ref) { return t.to(ref.device()); }
// A float constant with the dtype and device of `ref`.
Tensor like(const Tensor& t, const Tensor& ref) { return t.to(ref.dtype()).to(ref.device()); }

}  // namespace

Conv2dOptions copt(int64_t s, int64_t p, int64_t d, int64_t g) {
  Conv2dOptions o;
  o.stride = {s, s};
  o.padding = {p, p};
  o.dilation = {d, d};
  o.groups = g;
  return o;
}

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> cases = {
      {"add broadcast", {{2, 3, 4}, {3, 1}}, [](auto& v) { return add(v[0], v[1]); }},
      {"add broadcast leading", {{4}, {2, 3, 4}}, [](auto& v) { return add(v[0], v[1]); }},
      {"sub", {{2, 3}, {2, 3}}, [](auto& v) { return sub(v[0], v[1]); }},
      {"mul broadcast", {{2, 1, 4}, {1, 3, 1}}, [](auto& v) { return mul(v[0], v[1]); }},
      {"div", {{2, 3}, {3}}, [](auto& v) { return div(v[0], v[1]); }, 0.5, 2},
      {"maximum", {{3, 4}, {3, 4}}, [](auto& v) { return maximum(v[0], v[1]); }},
      {"minimum broadcast", {{3, 4}, {4}}, [](auto& v) { return minimum(v[0], v[1]); }},
      {"scalar ops", {{5}}, [](auto& v) { return rdiv(2.0, add(mul(v[0], 3.0), 4.0)) + rsub(1.0, v[0]); }},
      {"neg", {{4}}, [](auto& v) { return neg(v[0]); }},
      {"exp", {{2, 3}}, [](auto& v) { return exp(v[0]); }},
      {"log", {{2, 3}}, [](auto& v) { return log(v[0]); }, 0.5, 2},
      {"sqrt", {{2, 3}}, [](auto& v) { return sqrt(v[0]); }, 0.5, 2},
      {"square", {{2, 3}}, [](auto& v) { return square(v[0]); }},
      {"pow 2.5", {{2, 3}}, [](auto& v) { return pow(v[0], 2.5); }, 0.5, 2},
      {"abs", {{2, 3}}, [](auto& v) { return abs(v[0]); }},
      {"relu", {{2, 5}}, [](auto& v) { return relu(v[0]); }},
      {"relu6", {{2, 5}}, [](auto& v) { return relu6(mul(v[0], 8.0)); }},
      {"sigmoid", {{2, 3}}, [](auto& v) { return sigmoid(v[0]); }},
      {"tanh", {{2, 3}}, [](auto& v) { return tanh(v[0]); }},
      {"clamp", {{3, 4}}, [](auto& v) { return clamp(v[0], -0.5, 0.5); }},
      {"sum all", {{2, 3, 4}}, [](auto& v) { return sum(v[0]); }},
      {"sum axes keepdim", {{2, 3, 4}}, [](auto& v) { return sum(v[0], {0, 2}, true); }},
      {"sum negative axis", {{2, 3, 4}}, [](auto& v) { return sum(v[0], {-1}); }},
      {"mean", {{2, 3, 4}}, [](auto& v) { return mean(v[0], {1}); }},
      {"max axes", {{2, 3, 4}}, [](auto& v) { return max(v[0], {1, 2}); }},
      {"min all", {{2, 3}}, [](auto& v) { return min(v[0]); }},
      {"var unbiased", {{3, 4}}, [](auto& v) { return var(v[0], {1}); }},
      {"var biased keepdim", {{3, 4, 2}}, [](auto& v) { return var(v[0], {0, 2}, false, true); }},
      {"reshape", {{2, 6}}, [](auto& v) { return reshape(v[0], {3, -1}); }},
      {"reshape non-contiguous", {{2, 3, 4}}, [](auto& v) { return reshape(transpose(v[0], 0, 2), {4, 6}); }},
      {"permute", {{2, 3, 4}}, [](auto& v) { return permute(v[0], {2, 0, 1}); }},
      {"slice step", {{5, 4}}, [](auto& v) { return slice(v[0], 0, 1, 5, 2); }},
      {"slice negative", {{5, 4}}, [](auto& v) { return slice(v[0], 1, -3, -1); }},
      {"unsqueeze squeeze", {{3, 4}}, [](auto& v) { return squeeze(unsqueeze(v[0], 1), 1); }},
      {"concat", {{2, 3}, {2, 2}}, [](auto& v) { return concat({v[0], v[1]}, 1); }},
      {"expand", {{3, 1}}, [](auto& v) { return expand(v[0], {2, 3, 4}); }},
      {"index_select repeated", {{4, 3}}, [](auto& v) { return index_select(v[0], 0, {2, 0, 2}); }},
      {"matmul 2d", {{3, 4}, {4, 5}}, [](auto& v) { return matmul(v[0], v[1]); }},
      {"matmul batched shared b", {{2, 3, 4}, {4, 2}}, [](auto& v) { return matmul(v[0], v[1]); }},
      {"matmul batched", {{2, 3, 4}, {2, 4, 2}}, [](auto& v) { return matmul(v[0], v[1]); }},
      {"linear", {{3, 4}, {5, 4}, {5}}, [](auto& v) { return linear(v[0], v[1], v[2]); }},
      {"linear no bias", {{3, 4}, {5, 4}}, [](auto& v) { return linear(v[0], v[1], Tensor()); }},
      {"conv2d basic", {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}}, [](auto& v) { return conv2d(v[0], v[1], v[2]); }},
      {"conv2d stride pad", {{2, 3, 6, 5}, {4, 3, 3, 3}, {4}}, [](auto& v) { return conv2d(v[0], v[1], v[2], copt(2, 1, 1, 1)); }},
      {"conv2d dilation", {{1, 2, 7, 7}, {3, 2, 3, 3}}, [](auto& v) { return conv2d(v[0], v[1], Tensor(), copt(1, 2, 2, 1)); }},
      {"conv2d groups", {{2, 4, 5, 5}, {6, 2, 3, 3}, {6}}, [](auto& v) { return conv2d(v[0], v[1], v[2], copt(1, 1, 1, 2)); }},
      {"conv2d 1x1", {{2, 4, 3, 3}, {5, 4, 1, 1}}, [](auto& v) { return conv2d(v[0], v[1], Tensor()); }},
      {"conv2d 1x1 stride 2", {{2, 4, 5, 5}, {3, 4, 1, 1}}, [](auto& v) { return conv2d(v[0], v[1], Tensor(), copt(2, 0, 1, 1)); }},
      {"depthwise", {{2, 3, 5, 5}, {3, 1, 3, 3}, {3}}, [](auto& v) { return conv2d(v[0], v[1], v[2], copt(1, 1, 1, 3)); }},
      {"depthwise stride 2", {{2, 3, 6, 6}, {3, 1, 3, 3}}, [](auto& v) { return conv2d(v[0], v[1], Tensor(), copt(2, 1, 1, 3)); }},
      {"depthwise dilation", {{1, 2, 7, 7}, {2, 1, 3, 3}}, [](auto& v) { return conv2d(v[0], v[1], Tensor(), copt(1, 2, 2, 2)); }},
      {"depth multiplier 2", {{1, 2, 5, 5}, {4, 1, 3, 3}}, [](auto& v) { return conv2d(v[0], v[1], Tensor(), copt(1, 1, 1, 2)); }},
      {"batch_norm train", {{4, 3, 2, 2}, {3}, {3}}, [](auto& v) { return batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true, 0.1, 1e-5); }},
      // --sync-bn's batch norm and the all-reduce it is built on, in a group of one (the identity sum)
      {"sync_batch_norm train (one rank)", {{4, 3, 2, 2}, {3}, {3}},
       [](auto& v) { return dist::sync_batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), 0.1, 1e-5); }},
      {"sync_batch_norm train relu (one rank)", {{3, 2, 2, 3}, {2}, {2}},
       [](auto& v) { return dist::sync_batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), 0.1, 1e-5, BnAct::ReLU); }},
      {"all_reduce_sum (one rank)", {{2, 3}}, [](auto& v) { return mul(dist::all_reduce_sum(v[0]), v[0]); }},
      {"batch_norm train 2d", {{5, 3}, {3}, {3}}, [](auto& v) { return batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true, 0.1, 1e-5); }},
      {"batch_norm train no affine", {{3, 2, 2, 3}}, [](auto& v) { return batch_norm(v[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5); }},
      {"batch_norm eval", {{2, 3, 2, 2}, {3}, {3}}, [](auto& v) {
         Tensor rm = like(Tensor::from_vector<double>({0.1, -0.2, 0.3}, {3}), v[0]);
         Tensor rv = like(Tensor::from_vector<double>({0.5, 1.5, 2.0}, {3}), v[0]);
         return batch_norm(v[0], v[1], v[2], rm, rv, false, 0.1, 1e-5);
       }},
      {"batch_norm train relu", {{4, 3, 2, 2}, {3}, {3}},
       [](auto& v) { return batch_norm(v[0], v[1], v[2], Tensor(), Tensor(), true, 0.1, 1e-5, BnAct::ReLU); }},
      {"batch_norm train relu6", {{4, 3, 2, 2}, {3}, {3}},  // gamma * 8: some outputs above 6
       [](auto& v) { return batch_norm(v[0], mul(v[1], 8.0), v[2], Tensor(), Tensor(), true, 0.1, 1e-5, BnAct::ReLU6); }},
      {"batch_norm eval relu", {{2, 3, 2, 2}, {3}, {3}}, [](auto& v) {
         Tensor rm = like(Tensor::from_vector<double>({0.1, -0.2, 0.3}, {3}), v[0]);
         Tensor rv = like(Tensor::from_vector<double>({0.5, 1.5, 2.0}, {3}), v[0]);
         return batch_norm(v[0], v[1], v[2], rm, rv, false, 0.1, 1e-5, BnAct::ReLU);
       }},
      // channels-last inputs (core/layout.h): batch norm's [N*H*W, C] kernels, the element-wise
      // ops' flat path over their memory (outputs stay channels-last), mixed layouts
      {"batch_norm train channels-last", {{4, 3, 2, 3}, {3}, {3}},
       [](auto& v) { return batch_norm(to_channels_last(v[0]), v[1], v[2], Tensor(), Tensor(), true, 0.1, 1e-5); }},
      {"batch_norm train relu6 channels-last", {{3, 5, 3, 2}, {5}, {5}},
       [](auto& v) { return batch_norm(to_channels_last(v[0]), mul(v[1], 8.0), v[2], Tensor(), Tensor(), true, 0.1, 1e-5, BnAct::ReLU6); }},
      {"batch_norm eval relu channels-last", {{2, 3, 2, 2}, {3}, {3}}, [](auto& v) {
         Tensor rm = like(Tensor::from_vector<double>({0.1, -0.2, 0.3}, {3}), v[0]);
         Tensor rv = like(Tensor::from_vector<double>({0.5, 1.5, 2.0}, {3}), v[0]);
         return batch_norm(to_channels_last(v[0]), v[1], v[2], rm, rv, false, 0.1, 1e-5, BnAct::ReLU);
       }},
      {"add_relu", {{2, 3, 2, 3}, {2, 3, 2, 3}}, [](auto& v) { return add_relu(v[0], v[1]); }},
      {"add_relu channels-last", {{2, 3, 2, 3}, {2, 3, 2, 3}}, [](auto& v) {
         return add_relu(to_channels_last(v[0]), to_channels_last(v[1]));
       }},
      {"add relu mul channels-last", {{2, 3, 2, 3}, {2, 3, 2, 3}}, [](auto& v) {
         Tensor a = to_channels_last(v[0]), b = to_channels_last(v[1]);
         return mul(relu(add(a, b)), relu6(mul(a, 4.0)));
       }},
      {"channels-last with plain operands", {{2, 3, 2, 2}, {2, 3, 2, 2}, {1, 3, 1, 1}}, [](auto& v) {
         Tensor a = relu(to_channels_last(v[0]));
         return mul(add(a, v[1]), v[2]);  // mixed layouts and broadcasting: the strided loops
       }},
      {"max_pool2d", {{2, 2, 5, 5}}, [](auto& v) { return max_pool2d(v[0], {2, 2}, {2, 2}); }},
      {"max_pool2d overlap pad", {{1, 2, 5, 5}}, [](auto& v) { return max_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}); }},
      {"avg_pool2d pad include", {{1, 2, 5, 5}}, [](auto& v) { return avg_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}, true); }},
      {"avg_pool2d pad exclude", {{1, 2, 5, 5}}, [](auto& v) { return avg_pool2d(v[0], {3, 3}, {2, 2}, {1, 1}, false); }},
      {"adaptive_avg_pool2d", {{2, 2, 5, 7}}, [](auto& v) { return adaptive_avg_pool2d(v[0], {3, 2}); }},
      {"global avg pool", {{2, 3, 4, 4}}, [](auto& v) { return adaptive_avg_pool2d(v[0], {1, 1}); }},
      {"softmax dim 0", {{3, 4}}, [](auto& v) { return softmax(v[0], 0); }},
      {"log_softmax", {{3, 4}}, [](auto& v) { return log_softmax(v[0], -1); }},
      {"cross_entropy", {{4, 5}}, [](auto& v) { return cross_entropy(v[0], on(Tensor::from_vector<int64_t>({0, 4, 2, 2}, {4}), v[0])); }},
      {"cross_entropy smoothing", {{4, 5}}, [](auto& v) { return cross_entropy(v[0], on(Tensor::from_vector<int64_t>({1, 3, 0, 2}, {4}), v[0]), 0.1); }},
      {"dropout", {{4, 6}}, [](auto& v) { Generator g(7); return dropout(v[0], 0.3, true, g); }},
      {"contiguous clone to", {{2, 3}}, [](auto& v) { return transpose(v[0], 0, 1).contiguous().clone(); }},
  };
  return cases;
}

}  // namespace pfq::test
