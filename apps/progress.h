// progress.h — a one-line terminal progress bar with rate and ETA for long loops.
// Redraws in place on a terminal (at most ~10 times per second); on a pipe or file it
// prints a plain line every ~10% so logs stay readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace pfq::app {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "img");
  // Advances by `n` units (e.g. images) and shows `status` (e.g. "loss 0.41 acc 87.2%").
  void update(int64_t n, const std::string& status = "");
  // Ends the line with the final rate.
  void finish(const std::string& status = "");

 private:
  void draw(bool final_line);
  std::string label_, unit_, status_;
  int64_t total_, done_ = 0;
  int last_decile_ = -1;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

}  // namespace pfq::app
