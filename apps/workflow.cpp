// workflow.cpp — stage runner and stages of `pfq workflow`.
#include "apps/workflow.h"

#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <cmath>
#include <fstream>
#include <omp.h>

#include "apps/checkpoint.h"
#include "apps/config_file.h"
#include "apps/data_parallel.h"
#include "apps/finetune.h"
#include "apps/export_onnx.h"
#include "apps/intcheck.h"
#include "apps/model_loading.h"
#include "apps/ort_check.h"
#include "apps/pfq_plots.h"
#include "apps/workflow_report.h"
#include "core/dist/communicator.h"
#include "core/io/atomic_file.h"
#include "core/io/json_fields.h"
#include "layers/summary.h"
#include "prune/pfq.h"

namespace pfq::app {

#define PFQ_WORKFLOW_FIELDS(X) X(wbits) X(abits) X(intcheck_images) X(onnx_python)

void to_json(nlohmann::json& j, const WorkflowOptions& o) {
  PFQ_JSON_WRITE_FIELDS(j, o, PFQ_WORKFLOW_FIELDS);
  groups_to_json<StageOptions, RunOptions>(j, o);
  // only when given: the config.json of a run that pretrains stays as it was
  if (!o.pretrained.empty()) j["pretrained"] = o.pretrained;
  if (o.pretrained_weights.any()) j["pretrained_weights"] = o.pretrained_weights;
  if (o.sync_bn || o.scale_lr || o.no_overlap) j.update(nlohmann::json(static_cast<const ParallelOptions&>(o)));  // only when set: older config.json stay valid
}
void from_json(const nlohmann::json& j, WorkflowOptions& o) {
  nlohmann::json known = o;
  known["pretrained"] = o.pretrained;
  known["pretrained_weights"] = o.pretrained_weights;
  known.update(nlohmann::json(static_cast<const ParallelOptions&>(o)));
  check_option_keys(j, known, "workflow config");
  groups_from_json<StageOptions, RunOptions>(j, o);
  PFQ_JSON_READ_FIELDS(j, o, PFQ_WORKFLOW_FIELDS, nullptr);
  if (j.contains("pretrained")) o.pretrained = j.at("pretrained").get<std::string>();
  if (j.contains("pretrained_weights")) o.pretrained_weights = j.at("pretrained_weights").get<WeightsOptions>();
  from_json(j, static_cast<ParallelOptions&>(o));
}

WorkflowOptions read_workflow_config(const std::string& path) {
  return options_from_json<WorkflowOptions>(read_json_object(path), path);
}

// Stage machinery, shared with `pfq reproduce` (declared in workflow.h).
void note(const char* format, ...) {
  if (!dist::is_main_rank()) return;
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
}

std::string stage_dir(const WorkflowOptions& o, const std::string& stage) { return o.out + "/" + stage; }

bool stage_done(const WorkflowOptions& o, const std::string& stage, nlohmann::json& result) {
  const std::string marker = stage_dir(o, stage) + "/done.json";
  if (!std::filesystem::exists(marker)) return false;
  std::ifstream in(marker);
  try {
    result = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    PFQ_FAIL("workflow: ", marker, " is not valid JSON (", e.what(), "); delete it to rerun stage ", stage);
  }
  note("workflow: stage %s already done (%s), skipping\n", stage.c_str(), marker.c_str());
  return true;
}

void mark_done(const WorkflowOptions& o, const std::string& stage, const nlohmann::json& result) {
  io::write_file_atomic(stage_dir(o, stage) + "/done.json", result.dump(2) + "\n");
}

nlohmann::json run_pretrain(const WorkflowOptions& o) {
  nlohmann::json result;
  if (stage_done(o, "pretrain", result)) return result;
  note("workflow: stage pretrain (%s, %lld epochs)\n", o.model.c_str(), static_cast<long long>(o.pretrain_epochs));
  TrainOptions t;
  static_cast<ModelOptions&>(t) = o;
  static_cast<DataOptions&>(t) = o;
  static_cast<RunOptions&>(t) = o;
  static_cast<ParallelOptions&>(t) = o;
  t.out = stage_dir(o, "pretrain");
  t.epochs = o.pretrain_epochs;
  t.lr = o.pretrain_lr;
  t.momentum = 0.9;
  t.nesterov = true;
  t.weight_decay = o.weight_decay;
  t.schedule = "cosine";
  t.resume = true;  // continues an interrupted pretrain stage, starts fresh otherwise
  TrainResult r = train(t);  // on every rank of a data-parallel run
  PFQ_CHECK(!r.interrupted, "workflow interrupted during pretrain; run the same command again to resume");
  return on_main_rank([&] {
    plot_curves(t.out, "pretrain");
    nlohmann::json done = {{"checkpoint", r.last_checkpoint}, {"curves", t.out + "/curves.svg"}, {"top1", r.final_eval.top1},
                           {"top5", r.final_eval.top5}, {"loss", r.final_eval.loss}};
    mark_done(o, "pretrain", done);
    return done;
  });
}

nlohmann::json run_pretrained(const WorkflowOptions& o) {
  // rank 0 imports and evaluates; every rank loads the checkpoint it wrote in the next stage
  return on_main_rank([&] {
    nlohmann::json result;
    if (stage_done(o, "pretrain", result)) return result;
    std::filesystem::create_directories(stage_dir(o, "pretrain"));
    if (o.threads > 0) omp_set_num_threads(o.threads);
    auto loader = make_loader(o.dataset, o.data_dir, false, eval_batch_size(o), o.workers, o.seed, o.limit_test, o);
    // Plain weights (PyTorch) become a pfq checkpoint in the stage folder, which later stages load.
    std::string pretrained = std::filesystem::absolute(o.pretrained).string();
    if (!is_pfq_checkpoint_file(o.pretrained)) {
      WeightsOptions wo = o.pretrained_weights;
      if (wo.input_size <= 0) wo.input_size = loader_image_size(*loader);
      pretrained = std::filesystem::absolute(stage_dir(o, "pretrain") + "/imported.safetensors").string();
      import_weights(o.pretrained, wo, pretrained);
    } else {
      PFQ_CHECK(!o.pretrained_weights.any(), "--pretrained ", o.pretrained, " is a pfq checkpoint, which records its architecture: ",
                "the --pretrained-arch ... flags are for plain weights (drop them)");
    }
    Checkpoint ck = load_checkpoint(pretrained);
    PFQ_CHECK(!is_qat_checkpoint(ck), "--pretrained ", o.pretrained, " is a quantization-aware checkpoint; pass the float model");
    ModulePtr model = model_from_checkpoint(ck);
    check_checkpoint_fits(ck, "--pretrained " + o.pretrained, *loader, o.dataset);
    EvalResult ev = evaluate(*model, *loader);
    result = {{"checkpoint", pretrained}, {"imported", true}, {"source", std::filesystem::absolute(o.pretrained).string()},
              {"arch", ck.model.arch}, {"width", ck.model.width}, {"top1", ev.top1}, {"top5", ev.top5}, {"loss", ev.loss}};
    mark_done(o, "pretrain", result);
    return result;
  });
}

// Stage 2 (docs/method.md section 3): PfQ on the pretrained model. Evaluates the float model
// before and after, so the report shows the function is unchanged (exact border mode).
nlohmann::json run_pfq(const WorkflowOptions& o, const nlohmann::json& pretrain) {
  // PfQ's decisions are taken once, on rank 0, and reach the others in the checkpoint
  return on_main_rank([&] {
    nlohmann::json result;
    if (stage_done(o, "pfq", result)) return result;
    note("workflow: stage pfq (criterion %s, border %s)\n", o.criterion.c_str(), o.border.c_str());
    std::filesystem::create_directories(stage_dir(o, "pfq"));
    Checkpoint ck = load_checkpoint(pretrain.at("checkpoint").get<std::string>());
    ModulePtr model = model_from_checkpoint(ck);
    model->eval();
    const Shape in = {1, ck.model.in_channels, ck.model.input_size, ck.model.input_size};
    const ModelSummary before = summarize(*model, in);
    prune::PfqOptions po;
    po.criterion = prune::parse_criterion(o.criterion);
    po.border = prune::parse_border(o.border);
    prune::PruneReport rep = prune::pfq_prune(*model, ck.model, po);
    const ModelSummary after = summarize(*model, in);
    auto loader = make_test_loader(o, o.seed);
    EvalResult ev = evaluate(*model, *loader);
    TrainState st = ck.train;
    const std::string path = stage_dir(o, "pfq") + "/model.safetensors";
    save_checkpoint(path, *model, rep.config, st, nullptr);
    io::write_file_atomic(stage_dir(o, "pfq") + "/report.json", rep.to_json().dump(2) + "\n");
    io::write_file_atomic(stage_dir(o, "pfq") + "/report.txt", rep.str());
    std::fprintf(stderr, "%s", rep.str().c_str());
    // The per-layer folded weight range before vs after PfQ (docs/method.md section 2).
    if (!rep.layers.empty()) io::write_file_atomic(stage_dir(o, "pfq") + "/weight_range.svg", weight_range_svg(rep));
    result = {{"checkpoint", path},
              {"removed_channels", rep.removed_total},
              {"kept_constant", rep.kept_constant_total},
              {"params_before", before.total_params},
              {"params_after", after.total_params},
              {"macs_before", before.total_macs},
              {"macs_after", after.total_macs},
              {"top1_before", pretrain.at("top1")},
              {"top1_after", ev.top1}};
    mark_done(o, "pfq", result);
    return result;
  });
}

namespace {

// Stage 3 (docs/method.md section 4.3): quantization-aware fine-tuning of the PfQ model with
// BN folded, W/A bits as configured (first conv and last linear at 8 bits). The same fine-tune of
// the pretrained model without PfQ (stage finetune-nopfq, run last) is the report's comparison:
// same schedule, seed and quantizer, only PfQ differs.
nlohmann::json run_finetune(const WorkflowOptions& o, const std::string& stage, const std::string& checkpoint, const std::string& title) {
  nlohmann::json result;
  if (stage_done(o, stage, result)) return result;
  note("workflow: stage %s (W%d/A%d, %lld epochs)\n", stage.c_str(), o.wbits, o.abits,
               static_cast<long long>(o.finetune_epochs));
  FinetuneOptions f;
  f.checkpoint = checkpoint;
  f.out = stage_dir(o, stage);
  f.qat.wbits = o.wbits;
  f.qat.abits = o.abits;
  copy_finetune_schedule(o, f);
  f.seed = o.seed;
  f.threads = o.threads;
  f.device = o.device;
  static_cast<ParallelOptions&>(f) = o;
  require_shared_file(checkpoint, "the checkpoint");
  FinetuneResult r = finetune(f);  // on every rank of a data-parallel run
  if (r.collapsed) note("workflow: %s %s\n", stage.c_str(), r.collapse.c_str());
  // finetune() returns early on Ctrl-C; such a stage is not done (it restarts next time).
  PFQ_CHECK(!stop_requested(), "workflow interrupted during ", stage, "; run the same command again to redo that stage");
  return on_main_rank([&] {
    plot_curves(f.out, title);
    nlohmann::json done = {{"checkpoint", r.checkpoint}, {"curves", f.out + "/curves.svg"}, {"top1", r.top1}, {"top5", r.top5},
                           {"diverged", r.diverged}, {"collapsed", r.collapsed}, {"epochs", r.epochs}, {"wbits", o.wbits}, {"abits", o.abits}};
    mark_done(o, stage, done);
    return done;
  });
}

// Stage 4 (issue #4 item 5): export the fine-tuned model as an integer model (int8 weights,
// fixed-point requantization) and run it on CPU over the test set; its predictions are compared
// with the fake-quantized model's. The same checkpoint is exported as ONNX (QDQ) beside it and
// checked by ONNX Runtime when --onnx-python has it (onnx_stage). A model that cannot be
// converted (e.g. diverged to NaN) is a recorded result, not a crash.
nlohmann::json onnx_stage(const WorkflowOptions& o, const std::string& qat_checkpoint, int64_t images);

nlohmann::json run_intcheck_stage(const WorkflowOptions& o, const nlohmann::json& ft) {
  // rank 0 exports and checks; nothing here trains
  return on_main_rank([&] {
    nlohmann::json result;
    if (stage_done(o, "intcheck", result)) return result;
    note("workflow: stage intcheck (integer export + CPU run, ONNX export + ONNX Runtime check)\n");
    std::filesystem::create_directories(stage_dir(o, "intcheck"));
    IntCheckOptions ic;
    ic.model = stage_dir(o, "intcheck") + "/model.pfqint";
    ic.qat_checkpoint = ft.at("checkpoint").get<std::string>();
    ic.dataset = o.dataset;
    ic.data_dir = o.data_dir;
    ic.skip_bad = o.skip_bad;  // an image folder as the other stages read it (--image-size 64: the model's input)
    ic.image_size = o.image_size;
    ic.resize_size = o.resize_size;
    // The integer model runs pfq's reference integer kernels (plain loops): a sample of the test
    // set keeps this stage to a minute or two; `pfq intcheck` checks the whole set.
    ic.limit_test = o.intcheck_images == 0 ? o.limit_test
                    : o.limit_test > 0      ? std::min(o.limit_test, o.intcheck_images)
                                            : o.intcheck_images;
    ic.workers = o.workers;
    try {
      ExportResult e = export_integer(ic.qat_checkpoint, ic.model);
      result = run_intcheck(ic).to_json();
      result["model"] = ic.model;
      result["summary"] = e.summary;
    } catch (const Error& e) {
      note("workflow: integer check failed: %s\n", e.what());
      result = {{"error", e.what()}};
    }
    result["onnx"] = onnx_stage(o, ic.qat_checkpoint, ic.limit_test);
    mark_done(o, "intcheck", result);
    return result;
  });
}

// intcheck/model.onnx (QDQ) with the reference logits of the first images (at most 500: the
// reference includes the integer model's, on its plain-loop kernels) and ONNX Runtime's verdict.
nlohmann::json onnx_stage(const WorkflowOptions& o, const std::string& qat_checkpoint, int64_t images) {
  if (!onnx_export::available()) return {{"error", "this pfq was built without ONNX export (meson feature onnx)"}};
  OnnxExportRequest r;
  r.checkpoint = qat_checkpoint;
  r.out = stage_dir(o, "intcheck") + "/model.onnx";
  r.force = true;  // a stage that did not finish is redone whole
  r.reference_images = images > 0 ? std::min<int64_t>(images, 500) : 500;
  r.dataset = o.dataset;
  r.data_dir = o.data_dir;
  r.image_size = o.image_size;  // an image folder's reference images at the run's input size
  r.resize_size = o.resize_size;
  r.eval_batch_size = eval_batch_size(o);  // the run's evaluation batches
  nlohmann::json j;
  try {
    const onnx_export::Result e = export_onnx_checkpoint(r);
    j = {{"model", r.out}, {"summary", e.summary()}, {"bytes", e.bytes}, {"weight_bytes", e.weight_bytes}};
  } catch (const Error& e) {
    note("workflow: ONNX export failed: %s\n", e.what());
    return {{"error", e.what()}};
  }
  j["check"] = run_ort_check(stage_dir(o, "intcheck"), o.onnx_python);
  const nlohmann::json& c = j["check"];
  if (!c.at("ran").get<bool>()) note("workflow: ONNX Runtime check not run: %s\n", c.at("why").get<std::string>().c_str());
  else note("workflow: ONNX Runtime check %s (%s)\n", c.at("ok").get<bool>() ? "passed" : "FAILED",
                    c.at("log").get<std::string>().c_str());
  return j;
}

}  // namespace

namespace {

// The run's folder and its config.json: a folder that holds another configuration's run is refused.
void check_run_folder(const WorkflowOptions& o, nlohmann::json cfg) {
  std::filesystem::create_directories(o.out);
  const std::string cfg_path = o.out + "/config.json";
  if (std::filesystem::exists(cfg_path)) {
    std::ifstream in(cfg_path);
    nlohmann::json prev = nlohmann::json::parse(in, nullptr, false);
    PFQ_CHECK(!prev.is_discarded(), "workflow: ", cfg_path, " is not valid JSON");
    // Threads, loader workers, the device, the kernel choices and the number of ranks change
    // speed, not the experiment: they may differ between runs (a CUDA run's float32 sums differ
    // from the CPU's in the last bits, so do oneDNN's from pfq's own kernels', so do several
    // ranks' from one process's).
    for (const char* k : {"threads", "workers", "device", "backend", "onnx_python", "eval_batch_size", "ranks"}) {
      prev.erase(k);
      cfg.erase(k);
    }
    PFQ_CHECK(prev == cfg, "workflow: ", o.out, " holds a run with a different configuration (", cfg_path,
              "); use another --out or delete the folder");
  } else {
    io::write_file_atomic(cfg_path, cfg.dump(2) + "\n");
  }
}

}  // namespace

nlohmann::json run_workflow(const WorkflowOptions& o) {
  // A recipe's "pretrained" names a file the user downloads (docs/pretrained.md section 1).
  PFQ_CHECK(o.pretrained.empty() || std::filesystem::exists(o.pretrained) || std::filesystem::exists(o.out + "/pretrain/done.json"),
            "workflow: pretrained weights ", o.pretrained, " (--pretrained, or \"pretrained\" in the --config file) do not exist; ",
            "save them as docs/pretrained.md section 1 shows, or give --pretrained <file>");
  // Under mpirun every rank runs every stage: the training stages data-parallel, the others on
  // rank 0 alone (on_main_rank), handing checkpoints over through --out.
  const nlohmann::json config = with_backend(o);
  check_same_configuration(config, "pfq workflow's configuration");
  on_main_rank([&] {
    check_run_folder(o, config);
    return nlohmann::json();
  });
  nlohmann::json table = nlohmann::json::object();
  table["pretrain"] = o.pretrained.empty() ? run_pretrain(o) : run_pretrained(o);
  table["pfq"] = run_pfq(o, table["pretrain"]);
  table["finetune"] = run_finetune(o, "finetune", table["pfq"].at("checkpoint").get<std::string>(), "quantized fine-tune after PfQ");
  table["intcheck"] = run_intcheck_stage(o, table["finetune"]);
  table["finetune-nopfq"] = run_finetune(o, "finetune-nopfq", table["pretrain"].at("checkpoint").get<std::string>(),
                                         "quantized fine-tune without PfQ");
  return on_main_rank([&] {
    for (const char* stage : {"pretrain", "pfq", "finetune", "finetune-nopfq"}) table[stage]["size_kib"] = checkpoint_kib(table[stage]);
    write_workflow_report(o, table);
    io::write_file_atomic(o.out + "/results.json", table.dump(2) + "\n");
    return table;
  });
}

}  // namespace pfq::app
