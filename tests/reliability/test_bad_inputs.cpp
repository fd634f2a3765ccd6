// test_bad_inputs.cpp — the bad-input catalogue of docs/reliability.md that tests/data and
// tests/core do not already cover: unreadable folders, JPEGs using undefined tables, headers and
// checkpoint metadata claiming huge sizes (rejected before allocating), a full disk while
// writing a checkpoint, unknown flags and impossible flag combinations, bad --config files, and
// NaN/Inf during training.
#include <doctest/doctest.h>
#include <sys/mount.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "apps/checkpoint.h"
#include "apps/cli_checks.h"
#include "apps/commands.h"
#include "apps/trainer.h"
#include "apps/workflow.h"
#include "core/io/safetensors.h"
#include "tests/data/data_test_util.h"
#include "data/factory.h"
#include "data/image_folder.h"
#include "layers/models/registry.h"
#include "tests/skip.h"

using namespace pfq;
using pfq::data::testing::TempDir;
using pfq::data::testing::read_file;
using pfq::data::testing::write_file;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

std::vector<uint8_t> st_bytes(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8);
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

// Parses `args` (without the program name) with every pfq subcommand registered; returns
// the CLI11 error text, or "" when parsing succeeded (the tests only use invalid args).
// What CLI11 answers to `pfq <args>`: its message and the exit status `pfq` then ends with
// (CLI::App::exit: the error's exit code); {"", 0} when the arguments parse.
struct CliError {
  std::string message;
  int status = 0;
};
CliError cli_error(std::vector<std::string> args) {
  CLI::App app{"pfq"};
  app.require_subcommand(1);
  app::add_train_command(app);
  app::add_eval_command(app);
  app::add_workflow_command(app);
  app::add_finetune_command(app);
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return {e.what(), e.get_exit_code()};
  }
  return {};
}

bool have_fashion_mnist() {
  return fs::exists(data::default_data_dir("fashion-mnist") + "/t10k-images-idx3-ubyte.gz");
}

app::TrainOptions tiny_train(const std::string& out) {
  app::TrainOptions o;
  o.model = "mobilenetv1";
  o.width = 0.25;
  o.epochs = 1;
  o.batch_size = 16;
  o.limit_train = 64;
  o.limit_test = 16;
  o.workers = 1;
  o.threads = 1;
  o.quiet = true;
  o.schedule = "constant";
  o.out = out;
  return o;
}

}  // namespace

TEST_CASE("bad input: an image folder root that is a file, a class folder that is a broken or looping link") {
  TempDir dir;
  write_file(dir / "file", {1, 2, 3});
  CHECK_THROWS_WITH_AS(data::ImageFolderDataset(dir / "file"), doctest::Contains("image folder not found"), Error);
  fs::create_directories(dir / "root/a");
  write_file(dir / "root/a/x.png", read_file(std::string(PFQ_SOURCE_ROOT) + "/fuzz/corpus/image/gray2x2.png"));
  fs::create_directory_symlink(dir / "nowhere", dir / "root/b");  // dangling: not a class folder
  data::ImageFolderDataset ok(dir / "root");
  CHECK(ok.size() == 1);
  fs::create_directory_symlink(dir / "root", dir / "root/a/loop");  // a cycle under a class folder
  CHECK_THROWS_AS(data::ImageFolderDataset(dir / "root"), Error);
}

TEST_CASE("resource limits: headers claiming huge sizes are rejected before anything that size is allocated") {
  TempDir dir;
  // safetensors: a 1 TiB tensor in a 100-byte file
  write_file(dir / "huge.safetensors",
             st_bytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[262144,1048576],\"data_offsets\":[0,1099511627776]}}", 8));
  CHECK_THROWS_WITH_AS(io::load_safetensors(dir / "huge.safetensors"), doctest::Contains("out of the data buffer"), Error);
  // an empty tensor whose other dims overflow int64 (would be undefined behaviour in shape math)
  write_file(dir / "empty-huge.safetensors",
             st_bytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}", 0));
  CHECK_THROWS_WITH_AS(io::load_safetensors(dir / "empty-huge.safetensors"), doctest::Contains("is too large"), Error);
  // PNG header claiming 20000 x 20000 pixels: refused from the header, before decoding
  std::vector<uint8_t> png = read_file(std::string(PFQ_SOURCE_ROOT) + "/fuzz/corpus/image/gray2x2.png");
  REQUIRE(png.size() > 24);
  for (int off : {16, 20}) {  // IHDR width, height (big-endian)
    png[off] = 0;
    png[off + 1] = 0;
    png[off + 2] = 0x4E;
    png[off + 3] = 0x20;
  }
  write_file(dir / "big.png", png);
  CHECK_THROWS_WITH_AS(data::decode_image_file(dir / "big.png"), doctest::Contains("20000x20000 pixels, more than the limit"),
                       Error);
  // inputs found by fuzz/fuzz_image: a PNG chunk claiming 1.7 GB (stb_image allocated it) and a
  // JPEG Huffman table with more than 256 codes (stb_image wrote past its tables)
  const std::string reg = std::string(PFQ_SOURCE_ROOT) + "/fuzz/regressions/image/";
  CHECK_THROWS_WITH_AS(data::decode_image_file(reg + "stb-png-idat-length-oom-1.png"),
                       doctest::Contains("(corrupt PNG): the chunk at byte offset 33 claims 1711276052 bytes"), Error);
  CHECK_THROWS_WITH_AS(data::decode_image_file(reg + "stb-dht-overflow-1.jpg"), doctest::Contains("codes, more than 256"), Error);
  // workflow config: a huge number where an int is expected is an error, not a wrap-around
  write_file(dir / "c.json", bytes_of("{\"wbits\": 1e300}"));
  CHECK_THROWS_WITH_AS(app::read_workflow_config(dir / "c.json"), doctest::Contains("key 'wbits': expected an integer, got 1e+300"), Error);
  write_file(dir / "c.json", bytes_of("{\"wbits\": 4294967300}"));
  CHECK_THROWS_WITH_AS(app::read_workflow_config(dir / "c.json"), doctest::Contains("key 'wbits': value 4294967300 is out of range"), Error);
  write_file(dir / "c.json", bytes_of("{\"seed\": -1}"));
  CHECK_THROWS_WITH_AS(app::read_workflow_config(dir / "c.json"), doctest::Contains("key 'seed': value -1 is out of range"), Error);
}

TEST_CASE("bad input: a JPEG scan using a table no segment defined is refused before stb_image reads its uninitialised tables") {
  const std::string reg = std::string(PFQ_SOURCE_ROOT) + "/fuzz/regressions/image/";
  CHECK_THROWS_WITH_AS(data::decode_image_file(reg + "stb-undefined-huffman-table-1.jpg"),
                       doctest::Contains("(corrupt JPEG): the scan at byte offset 594 uses AC Huffman table 0, which no DHT"), Error);
  // rgb8x8.jpg: SOF at byte 154 (components 1, 2, 3 from byte 164, 3 bytes each: id, sampling,
  // quantization table), SOS at byte 593 (components from byte 598, 2 bytes each: id, DC/AC table)
  const std::vector<uint8_t> good = read_file(std::string(PFQ_SOURCE_ROOT) + "/fuzz/corpus/image/rgb8x8.jpg");
  REQUIRE(good.size() > 603);
  REQUIRE(good[593] == 0xFF);
  REQUIRE(good[594] == 0xDA);
  TempDir dir;
  auto edited = [&](size_t offset, uint8_t value) {
    std::vector<uint8_t> b = good;
    b[offset] = value;
    write_file(dir / "x.jpg", b);
    return dir / "x.jpg";
  };
  CHECK(data::decode_image_file(edited(601, 0x11)).width == 8);  // unchanged: DC 1, AC 1
  CHECK_THROWS_WITH_AS(data::decode_image_file(edited(601, 0x13)),
                       doctest::Contains("the scan at byte offset 593 uses AC Huffman table 3, which no DHT segment"), Error);
  CHECK_THROWS_WITH_AS(data::decode_image_file(edited(601, 0x21)),
                       doctest::Contains("the scan at byte offset 593 uses DC Huffman table 2, which no DHT segment"), Error);
  CHECK_THROWS_WITH_AS(data::decode_image_file(edited(172, 2)),
                       doctest::Contains("decodes component 3 with quantization table 2, which no DQT segment"), Error);
  CHECK_THROWS_WITH_AS(data::decode_image_file(edited(602, 2)),  // the scan names component 2 twice, 3 never
                       doctest::Contains("component 3 of the frame is in no scan before the end of the image"), Error);
}

TEST_CASE("resource limits: a checkpoint whose metadata claims a huge architecture is refused before the model is built") {
  TempDir dir;
  const models::ModelConfig cfg = models::describe(
      "mobilenetv1", models::ModelConfig{.in_channels = 1, .input_size = 28, .width = 0.25},
      *models::build_model("mobilenetv1", models::ModelConfig{.in_channels = 1, .input_size = 28, .width = 0.25}));
  const std::string good = dir / "good.safetensors";
  app::save_checkpoint(good, *models::build_model(cfg), cfg, app::TrainState{}, nullptr);
  CHECK_NOTHROW(app::model_from_checkpoint(app::load_checkpoint(good)));
  const io::SafetensorsFile f = io::load_safetensors(good);
  // the same weights under an edited "model" metadata entry
  auto edited = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json model = nlohmann::json::parse(f.metadata.at("model"));
    edit(model);
    io::Metadata meta = f.metadata;
    meta["model"] = model.dump();
    io::save_safetensors(dir / name, f.tensors, meta);
    return dir / name;
  };
  const char* too_big = "parameter and buffer values but the file holds ";
  CHECK_THROWS_WITH_AS(app::load_checkpoint(edited("w.safetensors", [](auto& m) { m["width"] = 1e6; m.erase("channels"); })),
                       doctest::Contains(too_big), Error);
  CHECK_THROWS_WITH_AS(app::load_checkpoint(edited("c.safetensors", [](auto& m) { m["channels"]["features.13.pw.0"] = 1000000000; })),
                       doctest::Contains("largest channel count 1000000000) has "), Error);
  CHECK_THROWS_WITH_AS(app::load_checkpoint(edited("i.safetensors", [](auto& m) { m["in_channels"] = int64_t{1} << 40; })),
                       doctest::Contains(too_big), Error);
  CHECK_THROWS_WITH_AS(app::load_checkpoint(edited("n.safetensors", [](auto& m) { m["num_classes"] = int64_t{1} << 40; })),
                       doctest::Contains(too_big), Error);
  CHECK_THROWS_WITH_AS(app::load_checkpoint(edited("o.safetensors",
                                                   [](auto& m) { m["output_corrections"]["features.0.0"] = {8, 1000000, 1000000}; })),
                       doctest::Contains(too_big), Error);
  CHECK_THROWS_WITH_AS(app::load_checkpoint(edited("s.safetensors", [](auto& m) { m["input_size"] = 1000000000; })),
                       doctest::Contains("input_size 1000000000 is outside [1, 4096]"), Error);
  CHECK_THROWS_WITH_AS(app::load_checkpoint(edited("x.safetensors", [](auto& m) { m["width"] = 1e300; })),
                       doctest::Contains("width must be a number in (0, 1e9]"), Error);
  // a claim cannot be cancelled by a negative one elsewhere
  CHECK_THROWS_WITH_AS(app::load_checkpoint(edited("neg.safetensors", [](auto& m) {
                         m["width"] = 1e6;
                         m.erase("channels");
                         m["output_corrections"]["features.0.0"] = {-1000000000, 1000000000, 1000000000};
                       })),
                       doctest::Contains("must have 3 positive sizes"), Error);
}

TEST_CASE("disk full while writing a checkpoint: a clear error and the previous checkpoint intact") {
  TempDir dir;
  const std::string mnt = dir / "tiny";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    PFQ_SKIP(std::string("cannot mount a tiny tmpfs here (") + std::strerror(errno) +
             "; needs root or CAP_SYS_ADMIN); the RLIMIT_FSIZE test of test_atomic_file covers writes failing");
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount(path.c_str()); }
  } unmount{mnt};
  const std::string path = mnt + "/last.safetensors";
  io::save_safetensors(path, {{"w", Tensor::full({4}, 1.0f)}}, {{"epoch", "1"}});
  const std::vector<uint8_t> before = read_file(path);
  // 256 KiB of weights do not fit in 64 KiB
  CHECK_THROWS_WITH_AS(io::save_safetensors(path, {{"w", Tensor::full({65536}, 2.0f)}}, {{"epoch", "2"}}),
                       doctest::Contains(std::strerror(ENOSPC)), Error);
  CHECK_THROWS_WITH_AS(io::save_safetensors(path, {{"w", Tensor::full({65536}, 2.0f)}}, {{"epoch", "2"}}),
                       doctest::Contains("the old file is intact"), Error);
  CHECK(read_file(path) == before);
  CHECK(io::load_safetensors(path).metadata.at("epoch") == "1");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(mnt)) entries += e.path().filename() != "lost+found";
  CHECK(entries == 1);  // no temp file left behind
}

TEST_CASE("bad flags: unknown flags, out-of-range values and impossible combinations are refused") {
  // The documented exit statuses (docs/reliability.md, row 20): 105 a value that fails its
  // check, 106 a required argument or subcommand missing, 109 an argument not expected.
  auto refused = [](std::vector<std::string> args, const std::string& message, int status) {
    const CliError e = cli_error(args);
    INFO(args[0], " ", args.size() > 1 ? args[1] : "", ": ", e.message);
    CHECK(e.message.find(message) != std::string::npos);
    CHECK(e.status == status);
  };
  refused({"train", "--bogus"}, "The following argument was not expected: --bogus", 109);
  refused({"train", "--epochs", "0"}, "--epochs: must be > 0, got 0", 105);
  refused({"train", "--model", "nosuchnet"}, "nosuchnet", 105);
  refused({"train", "--lr", "-1"}, "--lr: must be >= 0, got -1", 105);
  refused({"train", "--batch-size", "abc"}, "--batch-size: expected a number, got 'abc'", 105);
  refused({"workflow", "--wbits", "9"}, "--wbits: Value 9 not in range 1 to 8", 105);
  refused({"workflow", "--config", "/no/such/config.json"}, "/no/such/config.json", 105);
  refused({"eval"}, "checkpoint is required", 106);
  refused({"nosuchcommand"}, "A subcommand is required", 106);
  std::string zero = "0", tiny = "1e-300";  // the bounds themselves (parsing a good command would run it)
  CHECK(app::NonNegative(zero).empty());
  CHECK(app::Positive(tiny).empty());
  CHECK(app::Positive(zero) == "must be > 0, got 0");

  TempDir dir;
  auto o = tiny_train(dir / "run");
  o.device = "cuda:7";
  CHECK_THROWS_WITH_AS(app::train(o), doctest::Contains("cuda"), Error);
  if (!have_fashion_mnist()) {
    MESSAGE("skipped the data-dependent checks: Fashion-MNIST not installed");
    return;
  }
  o = tiny_train(dir / "run");
  o.batch_size = 128;  // more than the 64 images kept by --limit-train
  CHECK_THROWS_WITH_AS(app::train(o), doctest::Contains("fewer images (64) than one batch (128)"), Error);
  o = tiny_train(dir / "run");
  o.optimizer = "rmsprop";
  CHECK_THROWS_WITH_AS(app::train(o), doctest::Contains("expected sgd, adam or adamw"), Error);
}

TEST_CASE("bad --config files name the file, the key and what was expected") {
  TempDir dir;
  auto err = [&](const std::string& text) {
    write_file(dir / "c.json", bytes_of(text));
    try {
      app::read_workflow_config(dir / "c.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(err("{\"model\": ").find("not valid JSON") != std::string::npos);
  CHECK(err("[1, 2]").find("expected a JSON object of options, got array") != std::string::npos);
  CHECK(err("{\"nosuch\": 1}").find("unknown key 'nosuch'") != std::string::npos);
  const std::string wrong = err("{\"model\": \"mobilenetv1\", \"width\": \"wide\"}");
  CHECK(wrong.find("key 'width'") != std::string::npos);
  CHECK(wrong.find("number expected") != std::string::npos);
  CHECK(wrong.find(dir / "c.json") != std::string::npos);
  CHECK(err("").find("not valid JSON") != std::string::npos);
  // pfq reproduce --config: a reproduction's config.json (it has "quantizers") and a workflow recipe
  // get the same checks
  auto reproduce_err = [&](const std::string& text) {
    write_file(dir / "r.json", bytes_of(text));
    CLI::App cli{"pfq"};
    app::add_reproduce_command(cli);
    std::vector<std::string> args = {"--report-only", dir / "r.json", "--config", "reproduce"};  // reversed
    try {
      cli.parse(args);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(reproduce_err("{\"quantizers\": [\"minmax\"], \"jobs\": 2.5}").find("key 'jobs': expected an integer, got 2.5") !=
        std::string::npos);
  CHECK(reproduce_err("{\"quantizers\": [\"minmax\"], \"seeds\": \"0\"}").find("key 'seeds': value \"0\" has the wrong type") !=
        std::string::npos);
  CHECK(reproduce_err("{\"quantizers\": [\"minmax\"], \"nosuch\": 1}").find("unknown key 'nosuch'") != std::string::npos);
  CHECK(reproduce_err("{\"wbits\": 1e300}").find("key 'wbits': expected an integer, got 1e+300") != std::string::npos);
  // a run's config.json records the kernel choices under "backend": read back, it is no option
  write_file(dir / "ok.json", bytes_of("{\"model\": \"resnet20\", \"wbits\": 2, \"quick\": true, \"backend\": {\"cpu_conv\": \"eigen\"}}"));
  app::WorkflowOptions o = app::read_workflow_config(dir / "ok.json");
  CHECK(o.model == "resnet20");
  CHECK(o.wbits == 2);
  CHECK(o.quick);
}

TEST_CASE("non-finite values: first_nonfinite names the first bad parameter or gradient") {
  Tensor a = Tensor::full({3}, 1.0f), b = Tensor::full({2}, 2.0f);
  NamedTensors named = {{"a", a}, {"b", b}};
  CHECK(app::first_nonfinite(named, false).empty());
  CHECK(app::first_nonfinite(named, true).empty());  // no gradients yet
  b.data<float>()[1] = std::numeric_limits<float>::infinity();
  CHECK(app::first_nonfinite(named, false) == "b");
  a.data<float>()[0] = std::nanf("");
  CHECK(app::first_nonfinite(named, false) == "a");
}

TEST_CASE("non-finite loss stops training naming the step and the parameter; --skip-nonfinite skips and counts") {
  if (!have_fashion_mnist()) {
    PFQ_SKIP("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
  }
  TempDir dir;
  auto o = tiny_train(dir / "nan");
  o.lr = 1e30;  // the first step blows the weights up; the second step's loss is not finite
  o.momentum = 0;
  o.nesterov = false;
  try {
    app::train(o);
    FAIL("training with lr 1e30 did not stop");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("training stopped at step ") != std::string::npos);
    CHECK(msg.find("(epoch 1 batch ") != std::string::npos);
    const bool names_tensor = msg.find("parameter '") != std::string::npos || msg.find("forward pass overflowed") != std::string::npos;
    CHECK(names_tensor);
    CHECK(msg.find("not written yet") != std::string::npos);  // no epoch finished: no checkpoint to keep
    CHECK(msg.find("--skip-nonfinite") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(o.out + "/last.safetensors"));

  o.out = dir / "skip";
  o.skip_nonfinite = true;
  app::TrainResult r = app::train(o);
  CHECK(r.skipped_nonfinite >= 1);
  CHECK(r.skipped_nonfinite <= 3);  // 4 batches; the first step is finite
  std::ifstream in(o.out + "/metrics.jsonl");
  std::string line;
  std::getline(in, line);
  CHECK(nlohmann::json::parse(line).at("skipped_nonfinite").get<int64_t>() == r.skipped_nonfinite);
  app::Checkpoint ck = app::load_checkpoint(o.out + "/last.safetensors");
  CHECK(ck.train.extra.at("skipped_nonfinite").get<int64_t>() == r.skipped_nonfinite);
}
