// train_fashion_mnist.cpp — teaches the C++ training API end to end: a small CNN assembled from
// layers (Sequential of Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear), Fashion-MNIST
// read by make_dataset and batched by a DataLoader (fashion_mnist.h), SGD with momentum under a
// cosine learning-rate schedule, and the loop itself (forward, cross_entropy, backward, step),
// then evaluation in eval mode under NoGradGuard (fashion_mnist.h's top1) and a safetensors
// checkpoint of the trained weights.
//
//   train_fashion_mnist [--data-dir DIR] [--train N] [--test N] [--epochs E] [--out FILE]
//
// DIR holds the four Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist folder).
// The defaults (8192 training images, 2 epochs) take about a minute on 2 cores and reach ~79%.
#include <chrono>
#include <cstdio>
#include <string>

#include "core/io/safetensors.h"
#include "core/ops.h"
#include "core/optim/lr_schedule.h"
#include "core/optim/sgd.h"
#include "fashion_mnist.h"  // flags, loaders, top-1 (shared by the Fashion-MNIST examples)
#include "layers/layers.h"

using namespace pfq;

// A two-stage CNN for 1x28x28 images: [N, 1, 28, 28] -> [N, 10] logits.
std::shared_ptr<Sequential> small_cnn(Generator& gen) {
  auto conv = [&](int64_t ic, int64_t oc) {
    return std::make_shared<Conv2d>(ic, oc, 3, Conv2dArgs{.padding = 1, .bias = false}, gen);
  };
  auto net = std::make_shared<Sequential>();
  net->push_back(conv(1, 16)).push_back(std::make_shared<BatchNorm2d>(16)).push_back(std::make_shared<ReLU>());
  net->push_back(std::make_shared<MaxPool2d>(2));  // -> [N, 16, 14, 14]
  net->push_back(conv(16, 32)).push_back(std::make_shared<BatchNorm2d>(32)).push_back(std::make_shared<ReLU>());
  net->push_back(std::make_shared<MaxPool2d>(2));  // -> [N, 32, 7, 7]
  net->push_back(std::make_shared<Flatten>()).push_back(std::make_shared<Linear>(32 * 7 * 7, 10, true, gen));
  return net;
}

int main(int argc, char** argv) {
  std::string data_dir = data::default_data_dir("fashion-mnist"), out = "fashion_cnn.safetensors";
  int64_t n_train = 8192, n_test = 2000, epochs = 2;
  if (!example::parse_flags(argc, argv, {{"--data-dir", &data_dir}, {"--train", &n_train}, {"--test", &n_test},
                                          {"--epochs", &epochs}, {"--out", &out}}))
    return 2;
  // First N images of each split; the dataset's own augmentation + normalisation for training.
  example::Loaders data = example::fashion_mnist(data_dir, n_train, n_test);
  if (!data.train) return 2;
  data::DataLoader& train_loader = *data.train;

  Generator gen(0);  // every initialisation draws from it: the same seed, the same run
  std::shared_ptr<Sequential> model = small_cnn(gen);
  std::printf("model: %lld parameters\n%s\n", (long long)model->num_parameters(), model->repr().c_str());

  // The optimizer takes named parameters (state-dict names); BN and bias skip weight decay.
  std::vector<optim::ParamRef> params;
  for (auto& [name, p] : model->named_parameters()) params.push_back({name, p});
  optim::Sgd sgd(params, {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4, .exclude_bn_bias = true});
  optim::LrSchedule schedule(optim::ScheduleKind::Cosine, {.base_lr = 0.05, .total = double(epochs)});

  const auto t0 = std::chrono::steady_clock::now();
  const double batches = double(train_loader.num_batches());
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    model->train();
    train_loader.start_epoch(epoch);  // shuffles from (seed, epoch)
    double loss_sum = 0;
    while (auto batch = train_loader.next()) {
      sgd.set_lr(schedule(double(epoch) + double(batch->index) / batches));
      Tensor loss = cross_entropy((*model)(batch->images), batch->labels);  // records the tape
      sgd.zero_grad();
      loss.backward();  // walks the tape: every parameter's .grad() is filled
      sgd.step();       // p -= lr * (momentum buffer of grad + weight decay)
      loss_sum += loss.item();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("epoch %lld/%lld  loss %.4f  test top1 %.2f%%  (%.0f s)\n", (long long)epoch + 1, (long long)epochs,
                loss_sum / batches, example::top1(*model, *data.test), secs);
  }
  // The state dict under PyTorch's names, readable by any safetensors tool.
  io::save_safetensors(out, model->state_dict(), {{"format", "pt"}});
  std::printf("saved %s\n", out.c_str());
  return 0;
}
