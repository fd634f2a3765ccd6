// model_loading.cpp — models from float and QAT checkpoints (apps/model_loading.h); the file
// format itself is apps/checkpoint.cpp's.
#include "apps/model_loading.h"

#include "data/factory.h"
#include "layers/models/registry.h"
#include "quant/qat.h"

namespace pfq::app {

bool is_qat_checkpoint(const Checkpoint& ck) { return ck.train.extra.is_object() && ck.train.extra.contains("qat"); }

ModulePtr model_from_any_checkpoint(const Checkpoint& ck, DType dtype) {
  if (!is_qat_checkpoint(ck)) {
    ModulePtr m = model_from_checkpoint(ck);
    m->to(dtype);
    return m;
  }
  ModulePtr m = models::build_model(ck.model);
  m->to(dtype);
  quant::prepare_qat(*m, ck.train.extra.at("qat").get<quant::QatConfig>());
  try {
    m->load_state_dict(ck.model_state, true);
  } catch (const Error& e) {
    PFQ_FAIL("checkpoint ", ck.path, ": weights do not fit the recorded QAT model '", ck.model.arch, "': ", e.what());
  }
  return m;
}

void check_checkpoint_fits(const Checkpoint& ck, const std::string& what, const data::DataLoader& loader,
                           const std::string& dataset, const std::string& hint) {
  const data::DataInfo info = data::data_info(loader.dataset(), nullptr);
  PFQ_CHECK(info.channels == ck.model.in_channels && info.num_classes == ck.model.num_classes, what, " expects ",
            ck.model.in_channels, "-channel inputs and ", ck.model.num_classes, " classes; dataset ", dataset, " has ",
            info.channels, " channels and ", info.num_classes, " classes", hint);
}

}  // namespace pfq::app
