// no_onnx.cpp — export.h in a build without the meson feature `onnx` (protobuf, protoc and
// ONNX's onnx.proto): every export is a clear error saying what to install.
#include "core/error.h"
#include "onnx/export.h"

namespace pfq::onnx_export {

std::string Result::summary() const { return "ONNX export not built"; }

bool available() { return false; }

Result export_model(Module&, const Options&, const std::string& path) {
  PFQ_FAIL("onnx export: this pfq was built without ONNX support, so '", path, "' was not written; install Debian's ",
           "libprotobuf-dev, protobuf-compiler and libonnx-dev and reconfigure (meson setup --reconfigure, feature option onnx)");
}

}  // namespace pfq::onnx_export
