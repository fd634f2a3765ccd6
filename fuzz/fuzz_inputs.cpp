// fuzz_inputs.cpp — see fuzz_inputs.h. Plain functions (no libFuzzer dependency) so that the
// unit suite can replay the corpus and every input that once crashed.
#include "fuzz/fuzz_inputs.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "apps/checkpoint.h"
#include "apps/workflow.h"
#include "core/error.h"
#include "core/io/safetensors.h"
#include "data/cifar.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "quant/integer/model.h"

namespace pfq::fuzz {

namespace {

void write_file(const std::string& path, const void* data, size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  PFQ_CHECK(fd >= 0, "fuzz: cannot create ", path);
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n <= 0) break;
    p += n;
    size -= static_cast<size_t>(n);
  }
  ::close(fd);
  PFQ_CHECK(size == 0, "fuzz: cannot write ", path);
}

std::vector<uint8_t> gzip_bytes(const uint8_t* data, size_t size) {
  z_stream zs{};
  PFQ_CHECK(deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, "fuzz: deflateInit2");
  std::vector<uint8_t> out(deflateBound(&zs, static_cast<uLong>(size)) + 32);
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(size);
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  PFQ_CHECK(rc == Z_STREAM_END, "fuzz: deflate failed");
  return out;
}

// Runs `f`; pfq::Error is the expected way to reject bad input and is swallowed.
template <typename F>
void run(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

}  // namespace

std::string write_temp(const uint8_t* data, size_t size, const std::string& suffix) {
  static const std::string dir = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  const std::string path = dir + "/pfq-fuzz-" + std::to_string(::getpid()) + "-" + suffix;
  write_file(path, data, size);
  return path;
}

void cifar(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const data::CifarKind kinds[] = {data::CifarKind::Cifar10, data::CifarKind::Cifar100Fine,
                                   data::CifarKind::Cifar100Coarse};
  const data::CifarKind kind = kinds[data[0] % 3];
  const std::string path = write_temp(data + 1, size - 1, "cifar.bin");
  run([&] {
    auto ds = data::load_cifar({path}, kind, "fuzz");
    if (ds->size() > 0) (void)ds->get(ds->size() - 1);
  });
}

void idx(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const uint8_t mode = data[0];
  std::string path;
  if (mode & 1) {
    const std::vector<uint8_t> gz = gzip_bytes(data + 1, size - 1);
    path = write_temp(gz.data(), gz.size(), "idx.gz");
  } else {
    path = write_temp(data + 1, size - 1, "idx");
  }
  const int ndims = (mode & 2) ? 1 : 3;
  run([&] {
    data::IdxArray a = data::read_idx(path, ndims);
    if (ndims == 1 && (mode & 4)) {  // as the labels of a matching file of 1x1 images
      std::vector<uint8_t> images = {0, 0, 0x08, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1};
      const uint32_t n = static_cast<uint32_t>(a.dims[0]);
      for (int i = 0; i < 4; ++i) images[4 + i] = static_cast<uint8_t>(n >> (24 - 8 * i));
      images.resize(images.size() + n, 0);
      const std::string img_path = write_temp(images.data(), images.size(), "idx-images");
      auto ds = data::load_idx(img_path, path, 10, "fuzz");
      (void)ds->get(0);
    }
  });
}

void image(const uint8_t* data, size_t size) {
  const std::string path = write_temp(data, size, "image");
  run([&] { (void)data::decode_image_file(path, int64_t{1} << 20, int64_t{1} << 20); });
}

void safetensors(const uint8_t* data, size_t size) {
  const std::string path = write_temp(data, size, "ckpt.safetensors");
  run([&] { (void)io::read_safetensors_header(path); });
  run([&] { (void)app::model_from_checkpoint(app::load_checkpoint(path)); });
}

void workflow_config(const uint8_t* data, size_t size) {
  const std::string path = write_temp(data, size, "config.json");
  run([&] {
    app::WorkflowOptions o = app::read_workflow_config(path);
    app::apply_quick(o);
  });
}

void pfqint(const uint8_t* data, size_t size) {
  const std::string path = write_temp(data, size, "model.pfqint");
  run([&] {
    const quant::IntModel m = quant::load_integer_model(path);
    int64_t numel = 1;
    for (int64_t d : m.input_shape) numel *= d;
    if (numel > 4096) return;  // loads are the target; big forwards only slow the fuzzer down
    for (const quant::IntNode& n : m.nodes)
      if (n.padding[0] > n.kernel[0] || n.padding[1] > n.kernel[1]) return;
    Shape shape{1};
    shape.insert(shape.end(), m.input_shape.begin(), m.input_shape.end());
    std::vector<float> x(static_cast<size_t>(numel));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) / 8.0f - 1.0f;
    (void)m.forward(Tensor::from_vector(x, shape));
  });
}

}  // namespace pfq::fuzz
