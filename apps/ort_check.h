// ort_check.h — runs ONNX's own software on an exported model from inside pfq (apps/): writes
// tools/onnx_check.py (embedded at build time) into the model's folder and runs it with a Python
// that has onnx, onnxruntime, numpy and safetensors: onnx.checker with full checking, then ONNX
// Runtime's CPU provider at ORT_DISABLE_ALL and at the default optimisation level on the reference
// images `pfq export --reference-images` wrote. Used by `pfq workflow`'s integer-check stage.
// Left out: other runtimes (TensorRT, OpenVINO): they are not PyPI-installable on every machine.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace pfq::app {

/// Near-tie tolerance of the check (tools/onnx_check.py --tie-tol): a top-1 disagreement counts
/// only where ONNX Runtime's class scores more than this times the reference's largest |logit|
/// below the reference's top-1 (a float QDQ graph may round an activation tie the other way and
/// flip a near-tie); the rest are reported as near-tie flips, at most 1% of the images.
inline constexpr double kOrtTieTol = 0.02;

// Checks every <name>.onnx with its <name>.ref.safetensors in `dir`. Returns
//   {"ran": false, "why": "..."} when `python` cannot import the packages (with the command to
//     run the check later), or
//   {"ran": true, "ok": bool, "log": path, plus onnx_check.py's --json figures: "onnx",
//    "onnxruntime", "models": [{"model", "ok", "images", "ort-noopt": {...}, "ort-default": {...}}]}.
// The script's output goes to <dir>/onnx_check.log. Never throws for a failed check (a failure is
// a result); throws pfq::Error only when the script cannot be written.
nlohmann::json run_ort_check(const std::string& dir, const std::string& python, double agree = 0.999);

}  // namespace pfq::app
