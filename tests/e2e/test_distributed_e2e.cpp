// test_distributed_e2e.cpp — data parallelism as users run it: `mpirun -np 2 pfq train|finetune`
// on CPU ranks against one process with the same flags (the same global batch). With --sync-bn
// (training; the one process runs the same BN arithmetic) or frozen BN (W4/A4 fine-tuning)
// nothing depends on how the batch is split, so after a step the gradients (the optimizer's
// momentum buffers), weights, BN statistics and quantizer ranges agree to float32 rounding: the
// sums run in another order (each rank's half, then the all-reduce). Tolerance 2e-4 of each
// tensor's largest magnitude: changing the thread count of one process moves the first conv's
// gradient by 7.6e-5 here (docs/distributed.md). One step, because these models' float32
// training amplifies rounding: 1 vs 2 threads of one process already differ by 100% in some
// weights after 4 steps of MobileNetV1; the loop is the same every step, so one step and the
// ranks' per-epoch replica check cover the rest. Also: the all-reduce overlapped with backward
// equals the one after it bit for bit; per-rank BN keeps the replicas identical
// and learns, ranks given different flags are refused before training, and a rank killed
// mid-run ends the whole run within seconds with nothing half-written; `pfq workflow` runs on 2
// ranks, and a run trained on 2 ranks resumes in one process. Skipped without MPI in the
// build, without mpirun, or without Fashion-MNIST.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "apps/checkpoint.h"
#include "apps/config_file.h"
#include "apps/metrics.h"
#include "core/dist/communicator.h"
#include "data/factory.h"
#include "tests/e2e/shell_run.h"
#include "tests/skip.h"

using namespace pfq;

namespace {

using Run = test::ShellRun;
using test::shell;

std::string pfq_exe() { return std::string(PFQ_BUILD_ROOT) + "/apps/pfq"; }
// Root may run ranks (CI's containers run as root); more ranks than cores are allowed.
std::string mpirun(int ranks) {
  return "mpirun --allow-run-as-root --oversubscribe --bind-to none -np " + std::to_string(ranks) + " ";
}

// Why this machine cannot run the cases ("" = it can).
std::string cannot_run() {
  if (!dist::mpi_compiled()) return "this build has no MPI (meson option mpi; Debian: libopenmpi-dev)";
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) return "mpirun not found (Debian: openmpi-bin)";
  if (!std::filesystem::exists(data::default_data_dir("fashion-mnist") + "/t10k-images-idx3-ubyte.gz"))
    return "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";
  return "";
}

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("pfq-dist-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d.string();
}

// Fashion-MNIST in global batches of 32 (kOneStep: one step per epoch; kEightSteps: eight).
const std::string kCommon = " --dataset fashion-mnist --limit-test 128 --batch-size 32 --workers 1 --threads 1 --quiet --seed 3";
const std::string kOneStep = " --limit-train 32" + kCommon;
const std::string kEightSteps = " --limit-train 256" + kCommon;

// Largest |a - b| over each tensor, relative to the tensor's largest |a| (at least 1e-3).
void check_states_agree(const std::string& a_path, const std::string& b_path, double tol) {
  app::Checkpoint a = app::load_checkpoint(a_path), b = app::load_checkpoint(b_path);
  NamedTensors sa = a.model_state, sb = b.model_state;
  for (auto& [n, t] : a.optim_state) sa.emplace_back("optim." + n, t);
  for (auto& [n, t] : b.optim_state) sb.emplace_back("optim." + n, t);
  REQUIRE(sa.size() == sb.size());
  double worst = 0;
  std::string worst_name;
  for (size_t i = 0; i < sa.size(); ++i) {
    const std::string name = sa[i].first;  // a plain variable: clang 14 cannot capture bindings in CHECK_MESSAGE
    const Tensor& ta = sa[i].second;
    const Tensor& tb = sb[i].second;
    REQUIRE(name == sb[i].first);
    REQUIRE(ta.shape() == tb.shape());
    if (!is_floating(ta.dtype())) {
      CHECK_MESSAGE(ta.to(DType::Float64).to_vector<double>() == tb.to(DType::Float64).to_vector<double>(), name);
      continue;
    }
    const std::vector<double> va = ta.contiguous().to(DType::Float64).to_vector<double>(),
                              vb = tb.contiguous().to(DType::Float64).to_vector<double>();
    double scale = 1e-3, diff = 0;
    for (size_t k = 0; k < va.size(); ++k) scale = std::max(scale, std::abs(va[k])), diff = std::max(diff, std::abs(va[k] - vb[k]));
    if (diff / scale > worst) worst = diff / scale, worst_name = name;
  }
  MESSAGE("largest relative difference ", worst, " in ", worst_name);
  CHECK_MESSAGE(worst <= tol, worst_name, " differs by ", worst, " of its largest value");
}

}  // namespace

TEST_CASE("distributed: 2 ranks with --sync-bn train what one process trains, and only rank 0 writes") {
  if (const std::string why = cannot_run(); !why.empty()) PFQ_SKIP(why);
  const std::string one = temp_dir("train-one"), two = temp_dir("train-two");
  const std::string args = " train --model resnet20 --epochs 1 --lr 0.05 --schedule constant --sync-bn" + kOneStep;
  REQUIRE(shell(pfq_exe() + args + " --out " + one).rc == 0);
  Run r = shell(mpirun(2) + pfq_exe() + args + " --out " + two);
  REQUIRE(r.rc == 0);
  check_states_agree(one + "/last.safetensors", two + "/last.safetensors", 2e-4);
  app::MetricsLog m1(one, "metrics"), m2(two, "metrics");
  REQUIRE(m1.rows().size() == 1);
  REQUIRE(m2.rows().size() == 1);  // one row: rank 1 appended none
  CHECK(std::abs(m1.rows()[0]["train_loss"].get<double>() - m2.rows()[0]["train_loss"].get<double>()) < 1e-4);
  CHECK(std::abs(m1.rows()[0]["test_top1"].get<double>() - m2.rows()[0]["test_top1"].get<double>()) <= 100.0 / 128 + 1e-9);
  for (const auto& e : std::filesystem::directory_iterator(two))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp.") == std::string::npos, e.path());
  std::filesystem::remove_all(one);
  std::filesystem::remove_all(two);
}

TEST_CASE("distributed: a W4/A4 fine-tune on 2 ranks equals one process, quantizer ranges included, with BN frozen or synchronised") {
  if (const std::string why = cannot_run(); !why.empty()) PFQ_SKIP(why);
  const std::string base = temp_dir("ft-base");
  REQUIRE(shell(pfq_exe() + " train --model resnet20 --epochs 1 --lr 0.05 --schedule constant" + kEightSteps + " --out " + base).rc == 0);
  // Frozen from the first step, BN uses the running statistics: the split of the batch matters
  // only to the observers, which combine the ranks' ranges; they quantize from the first batch
  // (--calib-batches 0). Not frozen (a one-epoch fine-tune never freezes), the folded
  // convolutions normalise with the batch's statistics: the global batch's with --sync-bn
  // (without it, per rank, the last layer's input range differs by 22% of its value here; with it
  // 3.9e-7, 2026-12-06).
  for (const std::string bn : {" --freeze-bn-epoch 1", " --sync-bn"}) {
    CAPTURE(bn);
    const std::string one = temp_dir("ft-one"), two = temp_dir("ft-two");
    const std::string args = " finetune " + base + "/last.safetensors --epochs 1 --calib-batches 0 --lr 0.01" + bn + kOneStep;
    REQUIRE(shell(pfq_exe() + args + " --out " + one).rc == 0);
    REQUIRE(shell(mpirun(2) + pfq_exe() + args + " --out " + two).rc == 0);
    check_states_agree(one + "/last.safetensors", two + "/last.safetensors", 2e-4);
    std::filesystem::remove_all(one);
    std::filesystem::remove_all(two);
  }
  std::filesystem::remove_all(base);
}

TEST_CASE("distributed: per-rank BatchNorm keeps the replicas identical (checked every epoch) and learns") {
  if (const std::string why = cannot_run(); !why.empty()) PFQ_SKIP(why);
  const std::string out = temp_dir("perrank");
  Run r = shell(mpirun(2) + pfq_exe() + " train --model resnet20 --epochs 3 --lr 0.05 --schedule constant" + kEightSteps + " --out " + out);
  REQUIRE(r.rc == 0);
  app::MetricsLog m(out, "metrics");
  REQUIRE(m.rows().size() == 3);
  CHECK(m.rows()[2]["train_loss"].get<double>() < m.rows()[0]["train_loss"].get<double>());
  CHECK(m.rows()[2]["train_acc"].get<double>() > m.rows()[0]["train_acc"].get<double>());
  std::filesystem::remove_all(out);
}

// The gradient all-reduce overlapped with backward (the default) against --no-overlap, which
// runs the same buckets in the same order after backward: only when each bucket starts differs.
// With 2 ranks every element of a sum is a + b, and IEEE addition gives the same bits whichever
// operand comes first, so the weights, momentum buffers and BN statistics after 8 steps must be
// identical bit for bit; any difference means a bucket was started before all its gradients were
// final. Per-rank BN, and --sync-bn, whose backward runs blocking all-reduces between the
// buckets' (the ranks must start all of them in one order, or the run hangs or mixes them up).
TEST_CASE("distributed: gradients all-reduced during backward give bit for bit what --no-overlap gives, with and without --sync-bn") {
  if (const std::string why = cannot_run(); !why.empty()) PFQ_SKIP(why);
  for (const std::string bn : {"", " --sync-bn"}) {
    CAPTURE(bn);
    const std::string overlap = temp_dir("overlap"), after = temp_dir("no-overlap");
    const std::string args = " train --model resnet20 --epochs 1 --lr 0.05 --schedule constant" + bn + kEightSteps;
    REQUIRE(shell(mpirun(2) + pfq_exe() + args + " --out " + overlap).rc == 0);
    REQUIRE(shell(mpirun(2) + pfq_exe() + args + " --no-overlap --out " + after).rc == 0);
    check_states_agree(overlap + "/last.safetensors", after + "/last.safetensors", 0.0);
    std::filesystem::remove_all(overlap);
    std::filesystem::remove_all(after);
  }
}

TEST_CASE("distributed: ranks started with different flags are refused before training, naming the flag") {
  if (const std::string why = cannot_run(); !why.empty()) PFQ_SKIP(why);
  const std::string out = temp_dir("mismatch");
  const std::string args = " train --model resnet20 --epochs 1 --dataset fashion-mnist --limit-train 256 --limit-test 128 --batch-size 32 --workers 1 --threads 1 --quiet --out " + out;
  Run r = shell("mpirun --allow-run-as-root --oversubscribe --bind-to none -np 1 " + pfq_exe() + args + " --seed 1 : -np 1 " + pfq_exe() +
                args + " --seed 2");
  CHECK(r.rc != 0);
  CHECK(r.out.find("differs between ranks: 'seed'") != std::string::npos);
  CHECK(!std::filesystem::exists(out + "/last.safetensors"));
  std::filesystem::remove_all(out);
}

TEST_CASE("distributed: a rank killed mid-run ends every rank within seconds, leaving no half-written file") {
  if (const std::string why = cannot_run(); !why.empty()) PFQ_SKIP(why);
  const std::string out = temp_dir("kill");
  // Many epochs of a small model, so it is still training when rank 1 is killed 6 s in.
  const std::string cmd = mpirun(2) + pfq_exe() + " train --model resnet20 --epochs 200 --lr 0.05" + kEightSteps + " --out " + out;
  const std::string script = out + ".sh";
  {
    FILE* f = std::fopen(script.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fprintf(f,
                 "%s > /dev/null 2>&1 &\nMP=$!\nsleep 6\n"
                 "kill -9 $(pgrep -f -- '--out %s$' | tail -n 1)\n"
                 "start=$(date +%%s%%N); wait $MP; rc=$?; end=$(date +%%s%%N)\n"
                 "echo \"rc=$rc after_ms=$(( (end - start) / 1000000 ))\"\nsleep 1\n"
                 "echo \"left=$(pgrep -f -- '--out %s$' | wc -l)\"\n",
                 cmd.c_str(), out.c_str(), out.c_str());
    std::fclose(f);
  }
  Run r = shell("bash " + script);
  std::filesystem::remove(script);
  CHECK(r.out.find("rc=0") == std::string::npos);
  const size_t at = r.out.find("after_ms=");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(r.out.substr(at + 9)) < 30000.0);
  CHECK(r.out.find("left=0") != std::string::npos);
  if (std::filesystem::exists(out))
    for (const auto& e : std::filesystem::directory_iterator(out))
      CHECK_MESSAGE(e.path().filename().string().find(".tmp.") == std::string::npos, e.path());
  std::filesystem::remove_all(out);
}

TEST_CASE("distributed: pfq workflow on 2 ranks runs every stage, rank 0 alone writes, and the results follow one process's") {
  if (const std::string why = cannot_run(); !why.empty()) PFQ_SKIP(why);
  const std::string one = temp_dir("wf-one"), two = temp_dir("wf-two");
  // pretrain and fine-tunes data-parallel (--sync-bn: BN and QAT's folded BN over both ranks'
  // images), PfQ and the integer / ONNX checks on rank 0 alone, handing checkpoints over in --out
  const std::string args = " workflow --pretrain-epochs 1 --finetune-epochs 1 --intcheck-images 64 --sync-bn --onnx-python /nonexistent"
                           " --dataset fashion-mnist --limit-train 256 --limit-test 128 --batch-size 32 --workers 1 --threads 1 --seed 3";
  REQUIRE(shell(pfq_exe() + args + " --out " + one).rc == 0);
  Run r = shell(mpirun(2) + pfq_exe() + args + " --out " + two);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("stage pfq") == r.out.rfind("stage pfq"));  // notes from rank 0 only
  const nlohmann::json a = app::read_json_object(one + "/results.json"), b = app::read_json_object(two + "/results.json");
  for (const char* stage : {"pretrain", "pfq", "finetune", "intcheck", "finetune-nopfq"}) CHECK_MESSAGE(b.contains(stage), stage);
  CHECK(std::filesystem::exists(two + "/report.md"));
  // The same PfQ decisions; the float32 sums run in another order, so the losses agree to about
  // what one process's thread count changes (1 vs 2 threads: 0.1% here) and accuracies to a
  // few of the 128 test images (docs/distributed.md).
  CHECK(a["pfq"]["removed_channels"] == b["pfq"]["removed_channels"]);
  const double la = a["pretrain"]["loss"].get<double>(), lb = b["pretrain"]["loss"].get<double>();
  CHECK(std::abs(la - lb) < 0.01 * la);
  for (const char* stage : {"pretrain", "finetune", "finetune-nopfq"}) {
    CAPTURE(stage);
    CHECK(std::abs(a[stage]["top1"].get<double>() - b[stage]["top1"].get<double>()) <= 8 * 100.0 / 128 + 1e-9);
  }
  CHECK(b["intcheck"]["agreement"].get<double>() >= 95.0);
  app::MetricsLog m(two + "/finetune", "metrics");
  CHECK(m.rows().size() == 1);  // one row: rank 1 appended none
  for (const auto& e : std::filesystem::recursive_directory_iterator(two))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp.") == std::string::npos, e.path());
  std::filesystem::remove_all(one);
  std::filesystem::remove_all(two);
}

TEST_CASE("distributed: a run trained on 2 ranks resumes in one process, and that one on 2 ranks again") {
  if (const std::string why = cannot_run(); !why.empty()) PFQ_SKIP(why);
  // The checkpoint holds no per-rank state (BN statistics averaged, the global batch position).
  const std::string out = temp_dir("resume");
  const std::string args = " train --model resnet20 --lr 0.05 --schedule constant" + kEightSteps + " --out " + out;
  REQUIRE(shell(mpirun(2) + pfq_exe() + args + " --epochs 1").rc == 0);
  Run r = shell(pfq_exe() + args + " --epochs 2 --resume");
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("resuming from " + out + "/last.safetensors at epoch 2") != std::string::npos);
  r = shell(mpirun(2) + pfq_exe() + args + " --epochs 3 --resume");
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("resuming from " + out + "/last.safetensors at epoch 3") != std::string::npos);
  app::MetricsLog m(out, "metrics");
  REQUIRE(m.rows().size() == 3);
  for (int e = 0; e < 3; ++e) CHECK(m.rows()[e]["epoch"].get<double>() == e + 1);
  CHECK(app::load_checkpoint(out + "/last.safetensors").train.epoch == 3);
  std::filesystem::remove_all(out);
}

TEST_CASE("distributed: pfq reproduce on 2 ranks runs its grid, pruning on rank 0, and writes one report; --sync-bn reaches every run") {
  if (const std::string why = cannot_run(); !why.empty()) PFQ_SKIP(why);
  const std::string out = temp_dir("reproduce");
  const std::string args = " reproduce --sync-bn --only-bits 4/4 --quantizers minmax --pruning pfq,l1 --seeds 0 --pretrain-epochs 1 "
                           "--finetune-epochs 1 --dataset fashion-mnist --limit-train 256 --limit-test 128 --batch-size 32 "
                           "--workers 1 --threads 1 --out " + out;
  Run r = shell(mpirun(2) + pfq_exe() + args + " --jobs 2");
  CHECK(r.rc != 0);  // runs one after another on every rank
  CHECK(r.out.find("--jobs 1") != std::string::npos);
  r = shell(mpirun(2) + pfq_exe() + args);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("stage " + out + "/l1") == r.out.rfind("stage " + out + "/l1"));  // pruned once, by rank 0
  for (const char* run : {"w4a4-minmax-pfq-s0", "w4a4-minmax-l1-s0"})
    CHECK_MESSAGE(std::filesystem::exists(out + "/runs/" + run + "/done.json"), run);
  CHECK(std::filesystem::exists(out + "/report.md"));
  // --sync-bn in the reproduction's config and in the pretraining's and every fine-tune's
  CHECK(app::read_json_object(out + "/config.json").value("sync_bn", false));
  CHECK(app::read_json_object(out + "/pretrain/train_config.json").value("sync_bn", false));
  for (const char* run : {"w4a4-minmax-pfq-s0", "w4a4-minmax-l1-s0"})
    CHECK_MESSAGE(app::read_json_object(out + "/runs/" + run + "/finetune_config.json").value("sync_bn", false), run);
  for (const auto& e : std::filesystem::recursive_directory_iterator(out))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp.") == std::string::npos, e.path());
  std::filesystem::remove_all(out);
}
