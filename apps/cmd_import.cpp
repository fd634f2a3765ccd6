// cmd_import.cpp — `pfq import`: plain PyTorch weights (a safetensors state dict from
// torchvision, timm or pfq-named models) written as a pfq checkpoint whose metadata records the
// architecture, so later commands need no --arch flags. The work: apps/plain_weights.h.
#include <cstdio>

#include "apps/commands.h"
#include "apps/plain_weights.h"
#include "layers/summary.h"

namespace pfq::app {

void add_import_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("import", "write plain PyTorch weights (safetensors state dict) as a pfq checkpoint");
  struct ImportOptions {
    std::string weights, out;
    WeightsOptions arch;
  };
  auto o = std::make_shared<ImportOptions>();
  cmd->add_option("weights", o->weights, "a .safetensors state dict (tools/pth_to_safetensors.py converts .pth files)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "the pfq checkpoint to write")->required();
  add_weights_flags(cmd, o->arch);
  cmd->callback([o] {
    const Checkpoint ck = import_weights(o->weights, o->arch, o->out);
    const auto& m = ck.model;
    std::printf("%s: %s, width %g, variant %s, %lld x %lld x %lld input, %lld classes (%s names) -> %s\n", o->weights.c_str(),
                m.arch.c_str(), m.width, m.variant.c_str(), static_cast<long long>(m.in_channels), static_cast<long long>(m.input_size),
                static_cast<long long>(m.input_size), static_cast<long long>(m.num_classes),
                ck.train.extra.at("imported").at("names").get<std::string>().c_str(), o->out.c_str());
  });
}

}  // namespace pfq::app
