// shell_run.h — the e2e tests' way to run a command as a user would: through the shell, with
// stdout and stderr captured together, the exit status (128 + signal when killed) and the wall
// time, all printed in the test log. Header-only; doctest's REQUIRE fails the case when the
// shell cannot be started.
#pragma once
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace pfq::test {

struct ShellRun {
  int rc = -1;
  std::string out;  // stdout and stderr
  double seconds = 0;
};

// Runs `cmd` with `sh -c` (stderr joined to stdout).
inline ShellRun shell(const std::string& cmd) {
  ShellRun r;
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE(cmd, " -> exit ", r.rc, " in ", r.seconds, " s\n", r.out);
  return r;
}

}  // namespace pfq::test
