// cmd_inspect.cpp — `pfq inspect`: a checkpoint's architecture and layer summary, or the
// GPUs this build can use (--devices).
#include <cstdio>
#include <iostream>

#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "core/cuda/cuda_runtime.h"
#include "layers/summary.h"

namespace pfq::app {

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "describe a checkpoint (layers, parameters, multiply-adds) or list GPUs");
  struct Opts {
    std::string checkpoint;
    bool devices = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("checkpoint", o->checkpoint, "a .safetensors checkpoint written by pfq")->check(CLI::ExistingFile);
  cmd->add_flag("--devices", o->devices, "list the CUDA GPUs this build can use");
  cmd->add_flag("--json", o->json, "machine-readable output");
  cmd->callback([o] {
    if (o->devices) {
      if (!cuda::built_with_cuda()) {
        std::printf("this pfq was built without CUDA: no GPUs usable (cpu only)\n");
        return;
      }
      auto devs = cuda::list_devices();
      if (devs.empty()) std::printf("built with CUDA, but no GPU is present\n");
      for (auto& d : devs)
        std::printf("cuda:%d  %s  %.1f GiB  compute capability %d.%d\n", d.index, d.name.c_str(), d.total_memory / 1073741824.0,
                    d.cc_major, d.cc_minor);
      return;
    }
    PFQ_CHECK(!o->checkpoint.empty(), "pfq inspect: give a checkpoint path or --devices");
    Checkpoint ck = load_checkpoint(o->checkpoint);
    ModulePtr model = model_from_checkpoint(ck);
    ModelSummary s = summarize(*model, {1, ck.model.in_channels, ck.model.input_size, ck.model.input_size});
    if (o->json) {
      std::cout << nlohmann::json{{"model", ck.model}, {"summary", s.to_json()}, {"epoch", ck.train.epoch}}.dump(2) << "\n";
      return;
    }
    std::printf("%s: %s, trained %lld epochs, best top1 %.2f%%\n", o->checkpoint.c_str(), ck.model.arch.c_str(),
                static_cast<long long>(ck.train.epoch), ck.train.best_top1);
    std::printf("%s", s.str(2).c_str());
  });
}

}  // namespace pfq::app
