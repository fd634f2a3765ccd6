// test_examples_e2e.cpp — runs every program of examples/ as a user would (a child process, its
// output read back) on small data, and checks what each claims to teach: the new op's
// gradient check, PfQ by hand keeping the function while the range shrinks, the Fashion-MNIST
// examples learning, the experiment cell printing its row; and that a missing data folder or
// checkpoint is an error saying where it was expected. The examples are built by
// examples/meson.build (tools/run-tests.sh builds them with the e2e suite).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>

#include "data/factory.h"
#include "tests/e2e/shell_run.h"

namespace {

using Run = pfq::test::ShellRun;

// Runs examples/<name> with `args` (a shell word list); `env`: "VAR=value ..." set for it.
Run run_example(const std::string& name, const std::string& args, const std::string& env = "") {
  const std::string exe = std::string(PFQ_BUILD_ROOT) + "/examples/" + name;
  REQUIRE_MESSAGE(std::filesystem::exists(exe), exe, " not built (ninja -C <build> pfq-examples)");
  return pfq::test::shell(env + " " + exe + " " + args);
}

// The first number captured by `pattern` in `text` (fails the test case when absent).
double number_after(const std::string& text, const std::string& pattern) {
  std::smatch m;
  const bool found = std::regex_search(text, m, std::regex(pattern));
  REQUIRE_MESSAGE(found, "no match for ", pattern);
  return std::stod(m[1].str());
}

bool have_fashion_mnist() {
  return std::filesystem::exists(pfq::data::default_data_dir("fashion-mnist") + "/t10k-images-idx3-ubyte.gz");
}

}  // namespace

TEST_CASE("examples: new_op_gradcheck passes its op and rejects the wrong backward") {
  Run r = run_example("new_op_gradcheck", "");
  CHECK(r.rc == 0);
  CHECK(r.out.find("gradcheck(swish): pass") != std::string::npos);
  CHECK(r.out.find("gradcheck(swish with a wrong dx): fail") != std::string::npos);
  CHECK(number_after(r.out, "forward vs composed ops: max \\|diff\\| = ([0-9.e+-]+)") <= 1e-12);
}

TEST_CASE("examples: pfq_by_hand removes the dead channels, keeps the function and shrinks the range") {
  Run r = run_example("pfq_by_hand", "");
  CHECK(r.rc == 0);
  // two dead ReLU units: each producer channel and the depthwise channel it feeds
  CHECK(number_after(r.out, "PfQ removed ([0-9]+) channels") >= 4);
  CHECK(number_after(r.out, "max \\|logit before - after\\| over 16 inputs: ([0-9.e+-]+)") < 1e-3);
  const double before = number_after(r.out, "largest folded range in the model: ([0-9.e+-]+) ->");
  const double after = number_after(r.out, "largest folded range in the model: [0-9.e+-]+ -> ([0-9.e+-]+)");
  CHECK(after < before / 10);  // the 1/sqrt(eps) blow-up is gone
}

TEST_CASE("examples: a missing data folder or checkpoint says where it was expected") {
  const std::string missing = "/nonexistent/pfq-fashion-mnist";
  for (const char* name : {"train_fashion_mnist", "custom_quantizer_qat", "experiment_cell"}) {
    Run r = run_example(name, "--data-dir " + missing);
    CHECK(r.rc == 2);
    CHECK(r.out.find("Fashion-MNIST data expected at " + missing) != std::string::npos);
  }
  Run r = run_example("pfq_by_hand", "--checkpoint " + missing + ".safetensors");
  CHECK(r.rc == 2);
  CHECK(r.out.find("pfq checkpoint expected at " + missing + ".safetensors") != std::string::npos);
  Run cell = run_example("experiment_cell", "--pretrained " + missing + ".safetensors");
  CHECK(cell.rc == 2);
  CHECK(cell.out.find("pfq checkpoint expected at " + missing + ".safetensors") != std::string::npos);
  Run bad_flag = run_example("train_fashion_mnist", "--epoch 1");
  CHECK(bad_flag.rc == 2);
  CHECK(bad_flag.out.find("unknown flag --epoch") != std::string::npos);
}

TEST_CASE("examples: the Fashion-MNIST examples train, quantize and print the experiment row") {
  if (!have_fashion_mnist()) {
    MESSAGE("skipped: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
  const std::string out = (std::filesystem::temp_directory_path() / "pfq-e2e-example-cnn.safetensors").string();
  Run cnn = run_example("train_fashion_mnist", "--train 1024 --test 500 --epochs 1 --out " + out);
  CHECK(cnn.rc == 0);
  CHECK(number_after(cnn.out, "epoch 1/1 .* test top1 ([0-9.]+)%") > 40);  // chance is 10%
  CHECK(std::filesystem::exists(out));
  std::filesystem::remove(out);

  Run qat = run_example("custom_quantizer_qat", "--train 1024 --test 500");
  CHECK(qat.rc == 0);  // the example checks that every weight step is a power of two
  CHECK(number_after(qat.out, "([0-9]+) pow2 weight quantizers") == 3);  // 2 convs, 1 linear
  CHECK(number_after(qat.out, "W4/A8 pow2: test top1 ([0-9.]+)%") > 20);

  // Pretraining in the example itself (a smoke run: the row's format, both arms finite).
  Run cell = run_example("experiment_cell", "--train 1024 --test 500 --pretrain-epochs 1 --bits 8");
  CHECK(cell.rc == 0);
  CHECK(std::regex_search(cell.out, std::regex("\\| mobilenetv1 w0.25 \\| 8/8 \\| [0-9.]+ \\| [0-9.]+ \\| [0-9.]+ \\| [0-9]+ \\|")));
  // From a checkpoint with dead channels (pfq_by_hand writes one; untrained, so an arm may
  // diverge and print nan): the PfQ arm prunes the 4 channels.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("pfq-e2e-examples-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  REQUIRE(run_example("pfq_by_hand", "", "TMPDIR=" + dir.string()).rc == 0);
  Run cell4 = run_example("experiment_cell", "--train 512 --test 500 --pretrained " + (dir / "pfq_by_hand.safetensors").string());
  CHECK(cell4.rc == 0);
  CHECK(std::regex_search(cell4.out, std::regex("\\| mobilenetv1 w0.25 \\| 4/4 \\| [0-9.]+ \\| ([0-9.]+|nan) \\| ([0-9.]+|nan) \\| 4 \\|")));
  std::filesystem::remove_all(dir);
}
