// reproduce.cpp — options, run grid, stages and job runner of `pfq reproduce` (apps/reproduce.h).
// Stages reuse the workflow's (pretrain, PfQ, done.json markers) and apps/finetune; the
// baselines prune with prune/baselines at PfQ's filter count. Child processes (--jobs) run
// `pfq reproduce --out <out> --task <task>`, which reloads <out>/config.json.
#include "apps/reproduce.h"

#include <fcntl.h>
#include <omp.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "apps/checkpoint.h"
#include "apps/data_parallel.h"
#include "apps/export_onnx.h"
#include "apps/finetune.h"
#include "apps/model_loading.h"
#include "apps/quantizer_presets.h"
#include "apps/trainer.h"
#include "core/dist/communicator.h"
#include "core/io/atomic_file.h"
#include "core/io/json_fields.h"
#include "data/factory.h"
#include "layers/summary.h"
#include "prune/baselines.h"

extern char** environ;

namespace pfq::app {

#define PFQ_REPRODUCE_FIELDS(X)                                                                                  \
  X(out) X(pretrained) X(seeds) X(pretrain_per_seed) X(bits) X(quantizers) X(pruning) X(baseline_quantizers) X(jobs) \
  X(threads) X(device) X(stages) X(calib_batches) X(first_last_bits) X(export_onnx)

void to_json(nlohmann::json& j, const ReproduceOptions& o) {
  PFQ_JSON_WRITE_FIELDS(j, o, PFQ_REPRODUCE_FIELDS);
  groups_to_json<StageOptions>(j, o);
  if (o.pretrained_weights.any()) j["pretrained_weights"] = o.pretrained_weights;  // only when given: older configs stay as they were
  // Each only when set, for the same reason (and so that the free no_overlap adds no other key).
  const nlohmann::json parallel = static_cast<const ParallelOptions&>(o);
  for (const auto& [k, v] : parallel.items())
    if (v.get<bool>()) j[k] = v;
}
void from_json(const nlohmann::json& j, ReproduceOptions& o) {
  nlohmann::json known = o;
  known["pretrained_weights"] = o.pretrained_weights;
  known.update(nlohmann::json(static_cast<const ParallelOptions&>(o)));
  check_option_keys(j, known, "reproduce config");
  from_json(j, static_cast<ParallelOptions&>(o));
  if (j.contains("pretrained_weights")) o.pretrained_weights = j.at("pretrained_weights").get<WeightsOptions>();
  groups_from_json<StageOptions>(j, o);
  PFQ_JSON_READ_FIELDS(j, o, PFQ_REPRODUCE_FIELDS, nullptr);
}

void apply_workflow_recipe(const WorkflowOptions& w, ReproduceOptions& o) {
  static_cast<StageOptions&>(o) = w;  // model, data, schedule, --quick
  o.out = w.out + "-reproduce";
  o.seeds = {w.seed};
  o.threads = w.threads;
  o.device = w.device.str();
  o.pretrained = w.pretrained;  // a recipe that starts from pretrained weights (configs/*-pretrained.json)
  o.pretrained_weights = w.pretrained_weights;
  static_cast<ParallelOptions&>(o) = w;  // a recipe's --sync-bn / --scale-lr
}

std::pair<int, int> parse_bits(const std::string& wa) {
  const auto slash = wa.find('/');
  int w = 0, a = 0;
  size_t used_w = 0, used_a = 0;
  try {
    PFQ_CHECK(slash != std::string::npos, "");
    w = std::stoi(wa.substr(0, slash), &used_w);
    a = std::stoi(wa.substr(slash + 1), &used_a);
  } catch (const std::exception&) {
    used_w = 0;
  }
  PFQ_CHECK(slash != std::string::npos && used_w == slash && used_a == wa.size() - slash - 1 && used_w > 0 && used_a > 0,
            "reproduce: bits '", wa, "': expected W/A, e.g. 4/8");
  PFQ_CHECK(w >= 1 && w <= 8 && a >= 2 && a <= 8, "reproduce: bits '", wa, "': need 1 <= W <= 8 and 2 <= A <= 8");
  return {w, a};
}

std::string bits_tag(const std::string& wa) {
  const auto [w, a] = parse_bits(wa);
  char tag[16];
  std::snprintf(tag, sizeof tag, "w%da%d", w, a);
  return tag;
}

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string seed_root(const ReproduceOptions& o, uint64_t seed) {
  return o.pretrain_per_seed ? o.out + "/seed" + std::to_string(seed) : o.out;
}

// The workflow's options for the stages under `root` (pretrain, pfq) of pretraining seed `seed`.
WorkflowOptions stage_options(const ReproduceOptions& o, const std::string& root, uint64_t seed, int threads, int workers) {
  WorkflowOptions w;
  static_cast<StageOptions&>(w) = o;  // model, data, schedule
  static_cast<ParallelOptions&>(w) = o;  // --sync-bn, --scale-lr, --no-overlap of the pretraining
  w.out = root;
  w.seed = seed;
  w.threads = threads;
  w.workers = workers;
  w.device = parse_devices(o.device).front();  // a task's options hold its one device
  return w;
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  PFQ_CHECK(in, "reproduce: cannot read ", path, " (has the stage that writes it run?)");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  PFQ_CHECK(!j.is_discarded(), "reproduce: ", path, " is not valid JSON; delete it to redo that stage");
  return j;
}

// Stage "pretrain" of a root: the workflow's pretraining, or (--pretrained) the given
// checkpoint, evaluated once so the report has its float accuracy.
nlohmann::json pretrain_stage(const ReproduceOptions& o, uint64_t seed, int threads, int workers) {
  WorkflowOptions w = stage_options(o, seed_root(o, seed), seed, threads, workers);
  if (o.pretrained.empty()) return run_pretrain(w);
  w.pretrained = o.pretrained;
  w.pretrained_weights = o.pretrained_weights;
  return run_pretrained(w);
}

// Stage "<method>" of a root: none (the pretrained model as is), pfq (the workflow's PfQ
// stage) or a baseline removing as many channels as PfQ did. Done json: checkpoint,
// removed_channels, params/macs before and after, float top1 before and after.
nlohmann::json prune_stage(const ReproduceOptions& o, const std::string& method, uint64_t seed, int threads, int workers) {
  const std::string root = seed_root(o, seed);
  WorkflowOptions w = stage_options(o, root, seed, threads, workers);
  nlohmann::json pretrain = read_json_file(stage_dir(w, "pretrain") + "/done.json");
  if (method == "pfq") return run_pfq(w, pretrain);
  return on_main_rank([&] {  // a baseline's choice of channels, taken once
    nlohmann::json result;
    if (stage_done(w, method, result)) return result;
    int64_t target = 0;
    if (method != "none") target = prune_stage(o, "pfq", seed, threads, workers).at("removed_channels").get<int64_t>();
    note("reproduce: stage %s/%s (%lld channels)\n", root.c_str(), method.c_str(), static_cast<long long>(target));
    std::filesystem::create_directories(stage_dir(w, method));
    if (threads > 0) omp_set_num_threads(threads);
    Checkpoint ck = load_checkpoint(pretrain.at("checkpoint").get<std::string>());
    ModulePtr model = model_from_checkpoint(ck);
    model->eval();
    const Shape in = {1, ck.model.in_channels, ck.model.input_size, ck.model.input_size};
    const ModelSummary before = summarize(*model, in);
    result = {{"method", method}, {"target", target}, {"params_before", before.total_params}, {"macs_before", before.total_macs},
              {"top1_before", pretrain.at("top1")}};
    if (method == "none") {
      result.update({{"checkpoint", pretrain.at("checkpoint")}, {"removed_channels", 0}, {"params_after", before.total_params},
                     {"macs_after", before.total_macs}, {"top1_after", pretrain.at("top1")}});
    } else {
      prune::PruneReport rep = prune::baseline_prune(*model, ck.model, {prune::parse_baseline(method), target});
      const ModelSummary after = summarize(*model, in);
      auto loader = make_loader(o.dataset, o.data_dir, false, eval_batch_size(o), workers, seed, o.limit_test, o);
      EvalResult ev = evaluate(*model, *loader);
      const std::string path = stage_dir(w, method) + "/model.safetensors";
      save_checkpoint(path, *model, rep.config, ck.train, nullptr);
      io::write_file_atomic(stage_dir(w, method) + "/report.json", rep.to_json().dump(2) + "\n");
      result.update({{"checkpoint", path}, {"removed_channels", rep.removed_total}, {"params_after", after.total_params},
                     {"macs_after", after.total_macs}, {"top1_after", ev.top1}});
    }
    mark_done(w, method, result);
    return result;
  });
}

const ReproduceRun& find_run(const std::vector<ReproduceRun>& runs, const std::string& id) {
  for (const auto& r : runs)
    if (r.id == id) return r;
  PFQ_FAIL("reproduce: no run '", id, "' in this reproduction's plan");
}

// --export-onnx: the run's fine-tuned checkpoint as <run>/model.onnx, recorded in its done.json
// as "onnx" (a failed export is recorded too, with its error, and retried on the next call).
void export_run_onnx(const WorkflowOptions& w, const std::string& stage, nlohmann::json& result) {
  if (result.contains("onnx") && result["onnx"].contains("model")) return;
  OnnxExportRequest e;
  e.checkpoint = result.at("checkpoint").get<std::string>();
  e.out = stage_dir(w, stage) + "/model.onnx";
  e.force = true;  // only ever this run's own export
  try {
    const onnx_export::Result x = export_onnx_checkpoint(e);
    result["onnx"] = {{"model", e.out}, {"bytes", x.bytes}, {"weight_bytes", x.weight_bytes}};
    std::fprintf(stderr, "reproduce: %s\n", (e.out + ": " + x.summary()).c_str());
  } catch (const Error& err) {
    std::fprintf(stderr, "reproduce: ONNX export of %s failed: %s\n", stage.c_str(), err.what());
    result["onnx"] = {{"error", err.what()}};
  }
  mark_done(w, stage, result);
}

// One fine-tuning run: stage "runs/<id>" under o.out.
nlohmann::json finetune_run(const ReproduceOptions& o, const ReproduceRun& r, int threads, int workers, bool quiet) {
  WorkflowOptions w = stage_options(o, o.out, r.seed, threads, workers);
  const std::string stage = "runs/" + r.id;
  nlohmann::json result;
  if (stage_done(w, stage, result)) return result;
  const nlohmann::json pr = read_json_file(seed_root(o, r.seed) + "/" + r.pruning + "/done.json");
  note("reproduce: run %s\n", r.id.c_str());
  FinetuneOptions f;
  f.checkpoint = pr.at("checkpoint").get<std::string>();
  f.out = stage_dir(w, stage);
  f.qat = quantizer_preset(r.quantizer, r.wbits, r.abits);
  f.qat.first_last_bits = o.first_last_bits;
  f.qat.calib_batches = o.calib_batches;
  f.stages = o.stages;
  copy_finetune_schedule(o, f);
  f.seed = r.seed;
  f.threads = threads;
  f.workers = workers;
  f.device = parse_devices(o.device).front();
  f.quiet = quiet;
  static_cast<ParallelOptions&>(f) = o;
  require_shared_file(f.checkpoint, "the checkpoint");
  FinetuneResult fr = finetune(f);  // on every rank of a data-parallel run
  PFQ_CHECK(!stop_requested(), "reproduce interrupted during run ", r.id, "; run the same command again to redo it");
  return on_main_rank([&] {
    plot_curves(f.out, r.id);
    result = {{"id", r.id}, {"bits", r.bits}, {"wbits", r.wbits}, {"abits", r.abits}, {"quantizer", r.quantizer},
              {"pruning", r.pruning}, {"seed", r.seed}, {"checkpoint", fr.checkpoint}, {"top1", fr.top1}, {"top5", fr.top5},
              {"diverged", fr.diverged}, {"epochs", fr.epochs}, {"size_kib", fr.size_kib},
              {"removed_channels", pr.at("removed_channels")}, {"params", pr.at("params_after")}, {"macs", pr.at("macs_after")},
              {"qat", f.qat}};
    mark_done(w, stage, result);
    return result;
  });
}

void run_task(const ReproduceOptions& o, const std::string& task, int threads, int workers, bool quiet) {
  if (task.rfind("pretrain:", 0) == 0) {
    pretrain_stage(o, std::stoull(task.substr(9)), threads, workers);
    return;
  }
  PFQ_CHECK(task.rfind("run:", 0) == 0, "reproduce: unknown task '", task, "'; expected pretrain:<seed> or run:<id>");
  finetune_run(o, find_run(plan_runs(o), task.substr(4)), threads, workers, quiet);
}

pid_t spawn_task(const std::string& exe, const ReproduceOptions& o, const std::string& task, int threads,
                 const std::string& device, const std::string& log) {
  std::filesystem::create_directories(std::filesystem::path(log).parent_path());
  std::vector<std::string> args = {exe, "reproduce", "--out", o.out, "--task", task, "--threads", std::to_string(threads),
                                   "--workers", std::to_string(o.workers), "--device", device};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  PFQ_CHECK(rc == 0, "reproduce: cannot start ", exe, " for task ", task, ": ", std::strerror(rc));
  return pid;
}

std::string task_log(const ReproduceOptions& o, const std::string& task) {
  if (task.rfind("run:", 0) == 0) return o.out + "/runs/" + task.substr(4) + "/log.txt";
  return seed_root(o, std::stoull(task.substr(9))) + "/pretrain/log.txt";
}

// Runs `tasks` in this process one after another on the first device (jobs == 1 or no exe), or
// as up to `jobs` child processes with `threads` each, each started on the device of --device's
// list that runs the fewest; returns the tasks that failed ("task (log)").
std::vector<std::string> run_tasks(const ReproduceOptions& o, const std::vector<std::string>& tasks, const std::string& exe,
                                   int jobs, int threads) {
  std::vector<std::string> failed;
  const std::vector<std::string> devices = parse_devices(o.device);
  if (jobs <= 1 || exe.empty()) {
    ReproduceOptions one = o;
    one.device = devices.front();
    for (const auto& t : tasks) run_task(one, t, threads, o.workers, false);
    return failed;
  }
  install_stop_handlers();
  struct Child {
    std::string task;
    size_t device;
  };
  std::map<pid_t, Child> running;
  std::vector<int> busy(devices.size(), 0);  // children running per device
  size_t next = 0, finished = 0;
  bool forwarded = false;
  while (next < tasks.size() || !running.empty()) {
    while (static_cast<int>(running.size()) < jobs && next < tasks.size() && !stop_requested()) {
      const std::string& t = tasks[next++];
      const size_t d = static_cast<size_t>(std::min_element(busy.begin(), busy.end()) - busy.begin());
      const pid_t pid = spawn_task(exe, o, t, threads, devices[d], task_log(o, t));
      running[pid] = {t, d};
      ++busy[d];
      std::fprintf(stderr, "reproduce: started %s (pid %d, %s, %d threads, log %s)\n", t.c_str(), static_cast<int>(pid),
                   devices[d].c_str(), threads, task_log(o, t).c_str());
    }
    if (stop_requested() && !forwarded) {  // Ctrl-C reaches the children too; SIGTERM may not
      for (auto& [pid, t] : running) ::kill(pid, SIGTERM);
      forwarded = true;
    }
    if (running.empty()) break;
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid == 0 || (pid < 0 && errno == EINTR)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    PFQ_CHECK(pid > 0, "reproduce: waitpid failed: ", std::strerror(errno));
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const std::string& t = it->second.task;
    ++finished;
    std::fprintf(stderr, "reproduce: %s %s [%zu/%zu]\n", t.c_str(), ok ? "finished" : "FAILED", finished, tasks.size());
    if (!ok) failed.push_back(t + " (" + task_log(o, t) + ")");
    --busy[it->second.device];
    running.erase(it);
  }
  for (size_t i = next; i < tasks.size(); ++i) failed.push_back(tasks[i] + " (not started: interrupted)");
  return failed;
}

// The grid (bits, quantizers, pruning methods, seeds) may grow or shrink between calls: each run
// depends only on the schedule and its own id, so finished runs are reused and only new ones
// run. Everything else is the schedule and must match the folder's config.json.
// Speed settings and the folder's own path do not change results either.
const char* const kFreeKeys[] = {"bits", "quantizers", "pruning", "baseline_quantizers", "seeds",
                                 "out",  "jobs",       "threads", "workers", "device", "backend", "export_onnx", "eval_batch_size", "no_overlap"};

void check_config(const ReproduceOptions& o, bool save) {
  const std::string path = o.out + "/config.json";
  nlohmann::json cfg = with_backend(o);
  if (!std::filesystem::exists(path)) {
    PFQ_CHECK(save, "reproduce: ", o.out, " holds no reproduction (", path, " is missing)");
    std::filesystem::create_directories(o.out);
    io::write_file_atomic(path, cfg.dump(2) + "\n");
    return;
  }
  nlohmann::json prev = read_json_file(path), a = prev, b = cfg;
  for (const char* k : kFreeKeys) {
    a.erase(k);
    b.erase(k);
  }
  PFQ_CHECK(a == b, "reproduce: ", o.out, " holds a reproduction with a different schedule (", path,
            "); only --bits, --quantizers, --pruning, --baseline-quantizers and --seeds may change; use another --out or "
            "delete the folder");
  // Without --pretrained and --pretrain-per-seed, one pretraining ran with the first seed.
  const auto prev_seeds = prev.at("seeds").get<std::vector<uint64_t>>();
  PFQ_CHECK(!o.pretrained.empty() || o.pretrain_per_seed || prev_seeds.empty() || o.seeds.front() == prev_seeds.front(),
            "reproduce: ", o.out, " was pretrained with seed ", prev_seeds.empty() ? 0 : prev_seeds.front(),
            "; keep it first in --seeds");
  if (save && prev != cfg) io::write_file_atomic(path, cfg.dump(2) + "\n");
}

}  // namespace

std::vector<ReproduceRun> plan_runs(const ReproduceOptions& o) {
  PFQ_CHECK(!o.seeds.empty(), "reproduce: --seeds is empty");
  PFQ_CHECK(!o.bits.empty() && !o.quantizers.empty() && !o.pruning.empty(), "reproduce: bits, quantizers and pruning need at least one entry each");
  for (const auto& q : o.quantizers) quantizer_preset(q, 4, 4);
  for (const auto& q : o.baseline_quantizers) quantizer_preset(q, 4, 4);
  for (const auto& p : o.pruning)
    PFQ_CHECK(p == "none" || p == "pfq" || p == "l1" || p == "bn-gamma", "reproduce: pruning '", p,
              "'; expected none, pfq, l1 or bn-gamma");
  std::vector<ReproduceRun> runs;
  for (const auto& b : o.bits) {
    const auto [wb, ab] = parse_bits(b);
    for (const auto& q : o.quantizers)
      for (const auto& p : o.pruning) {
        if ((p == "l1" || p == "bn-gamma") && !contains(o.baseline_quantizers, q)) continue;
        for (uint64_t s : o.seeds) {
          ReproduceRun r{bits_tag(b) + "-" + q + "-" + p + "-s" + std::to_string(s), b, q, p, wb, ab, s};
          for (const auto& prev : runs) PFQ_CHECK(prev.id != r.id, "reproduce: run ", r.id, " listed twice (repeated bits, quantizer, pruning or seed)");
          runs.push_back(r);
        }
      }
  }
  return runs;
}

nlohmann::json run_reproduce(const ReproduceOptions& o, const std::string& exe) {
  PFQ_CHECK(o.jobs >= 1, "reproduce: --jobs must be at least 1, got ", o.jobs);
  PFQ_CHECK(o.pretrained.empty() || !o.pretrain_per_seed, "reproduce: --pretrained and --pretrain-per-seed exclude each other");
  PFQ_CHECK(o.pretrained.empty() || std::filesystem::exists(o.pretrained), "reproduce: pretrained weights ", o.pretrained,
            " (--pretrained, or \"pretrained\" in the --config file) do not exist; save them as docs/pretrained.md section 1 shows, "
            "or give --pretrained <file>");
  const std::vector<ReproduceRun> runs = plan_runs(o);
  // Every device must be usable before anything is written: no silent CPU fallback, and no
  // grid that fails run by run.
  const std::vector<std::string> devices = parse_devices(o.device);
  for (const auto& d : devices) DeviceOption(d).resolve();
  // Under mpirun every rank runs every task in turn (jobs 1): fine-tuning data-parallel, the
  // pruning, exports and the report on rank 0 alone (on_main_rank), files handed over in --out.
  const int ranks = dist::world().size();
  PFQ_CHECK(ranks == 1 || o.jobs == 1, "reproduce: --jobs ", o.jobs, " under ", ranks,
            " ranks; a data-parallel reproduction runs its tasks one after another, each on every rank (--jobs 1)");
  check_same_configuration(with_backend(o), "pfq reproduce's configuration");
  on_main_rank([&] {
    check_config(o, true);
    return nlohmann::json();
  });
  int total = rank_threads(o.threads);  // a data-parallel run's ranks split the cores
  if (total <= 0) total = omp_get_max_threads();
  const int jobs = std::max(1, std::min(o.jobs, total));
  const int per_job = std::max(1, total / jobs);
  if (static_cast<int>(devices.size()) > jobs)
    note("reproduce: --device lists %zu devices but only %d run%s at a time (--jobs %d, %d threads): %d of them used\n",
                 devices.size(), jobs, jobs == 1 ? "" : "s", o.jobs, total, jobs);
  note("reproduce: %zu fine-tuning runs, %d at once with %d threads each\n", runs.size(), jobs, per_job);

  std::vector<uint64_t> pretrain_seeds = o.pretrain_per_seed ? o.seeds : std::vector<uint64_t>{o.seeds.front()};
  std::vector<std::string> tasks;
  for (uint64_t s : pretrain_seeds)
    if (!std::filesystem::exists(seed_root(o, s) + "/pretrain/done.json")) tasks.push_back("pretrain:" + std::to_string(s));
  // One pretraining (the default) gets every thread; per-seed pretrainings share them like runs.
  const int pretrain_jobs = std::min<int>(jobs, static_cast<int>(pretrain_seeds.size()));
  std::vector<std::string> failed =
      run_tasks(o, tasks, o.pretrained.empty() ? exe : "", pretrain_jobs, std::max(1, total / pretrain_jobs));
  PFQ_CHECK(failed.empty(), "reproduce: pretraining failed: ", failed.front());

  std::vector<std::string> methods;
  for (const auto& p : o.pruning) methods.push_back(p);
  for (uint64_t s : pretrain_seeds)
    for (const auto& m : methods) prune_stage(o, m, s, total, o.workers);

  tasks.clear();
  for (const auto& r : runs)
    if (!std::filesystem::exists(o.out + "/runs/" + r.id + "/done.json")) tasks.push_back("run:" + r.id);
  failed = run_tasks(o, tasks, exe, jobs, per_job);
  nlohmann::json report = on_main_rank([&] {
    if (o.export_onnx) {  // every finished run of the grid, including those done by earlier calls
      const WorkflowOptions w = stage_options(o, o.out, o.seeds.front(), total, o.workers);
      for (const auto& r : runs) {
        const std::string stage = "runs/" + r.id;
        if (!std::filesystem::exists(stage_dir(w, stage) + "/done.json")) continue;
        nlohmann::json result = read_json_file(stage_dir(w, stage) + "/done.json");
        export_run_onnx(w, stage, result);
      }
    }
    return write_reproduce_report(o);
  });
  report["executed"] = static_cast<int64_t>(tasks.size() - failed.size());
  if (!failed.empty()) {
    std::string list;
    for (const auto& f : failed) list += "\n  " + f;
    PFQ_FAIL("reproduce: ", failed.size(), " of ", tasks.size(), " runs failed (the report lists them as missing; run the same "
             "command again to retry):", list);
  }
  return report;
}

nlohmann::json reproduce_report_only(const ReproduceOptions& o) {
  plan_runs(o);
  return on_main_rank([&] {
    check_config(o, false);
    return write_reproduce_report(o);
  });
}

void run_reproduce_task(const std::string& out, const std::string& task, int threads, int workers, const std::string& device) {
  ReproduceOptions o;
  nlohmann::json saved = read_json_file(out + "/config.json");
  saved.erase("backend");  // a record of the kernel choices, not an option
  from_json(saved, o);
  o.out = out;
  o.workers = workers;
  o.device = device;
  run_task(o, task, threads, workers, true);
}

}  // namespace pfq::app
