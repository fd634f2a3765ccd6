// no_onednn.cpp — the oneDNN entry points of conv_backend.h in a build without oneDNN, generated
// from that header's list: set_conv_backend() never selects oneDNN there, so reaching one of
// these is a bug; can_run says no.
#include "core/cpu/conv_backend.h"
#include "core/error.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // the stubs keep the list's parameter names

namespace pfq::cpu::onednn {

#define PFQ_ONEDNN_STUB(NAME, PARAMS) \
  bool NAME PARAMS { PFQ_FAIL("internal: oneDNN convolution called in a build without oneDNN"); }
PFQ_ONEDNN_CONV_ENTRY_POINTS(PFQ_ONEDNN_STUB)
#undef PFQ_ONEDNN_STUB

bool can_run(const ConvGeom&) { return false; }

}  // namespace pfq::cpu::onednn
