// ort_check.cpp — ONNX Runtime check of an exported model (ort_check.h).
#include "apps/ort_check.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <vector>

#include "core/error.h"
#include "core/io/atomic_file.h"
#include "onnx_check_script.h"  // generated from tools/onnx_check.py (apps/meson.build)

extern char** environ;

namespace pfq::app {

namespace {

// Runs argv (PATH searched for argv[0]) with stdout and stderr appended to `log` ("" for
// /dev/null); returns its exit status, or -1 when it could not be started or was killed.
int run_process(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const char* out = log.empty() ? "/dev/null" : log.c_str();
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

nlohmann::json run_ort_check(const std::string& dir, const std::string& python, double agree) {
  const std::string script = dir + "/onnx_check.py";
  io::write_file_atomic(script, kOnnxCheckScript);
  const std::string later = python + " " + script + " " + dir;
  if (run_process({python, "-c", "import onnx, onnxruntime, numpy, safetensors"}, "") != 0)
    return {{"ran", false},
            {"why", python + " cannot import onnx, onnxruntime, numpy and safetensors (pip install them, or pass "
                             "--onnx-python with a Python that has them); to check later: " + later}};
  const std::string log = dir + "/onnx_check.log", json_path = dir + "/onnx_check.json";
  std::remove(log.c_str());
  std::remove(json_path.c_str());
  const std::string a = std::to_string(agree);
  const int rc = run_process({python, script, dir, "--agree", a, "--agree-optimized", a, "--tie-tol", std::to_string(kOrtTieTol),
                                "--json", json_path}, log);
  nlohmann::json r;
  std::ifstream in(json_path);
  if (in) r = nlohmann::json::parse(in, nullptr, false);
  if (!r.is_object()) r = {{"error", "onnx_check.py wrote no results (exit status " + std::to_string(rc) + "); see " + log}};
  r["ran"] = true;
  r["ok"] = rc == 0;
  r["log"] = log;
  return r;
}

}  // namespace pfq::app
