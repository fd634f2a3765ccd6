// progress.cpp — drawing of the progress bar.
#include "apps/progress.h"

#include <unistd.h>

#include <cstdio>

namespace pfq::app {

std::string format_duration(double s) {
  char buf[32];
  int t = static_cast<int>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ds", t);
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(isatty(fileno(stderr))),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void ProgressBar::update(int64_t n, const std::string& status) {
  done_ += n;
  status_ = status;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ > std::chrono::milliseconds(100) || done_ >= total_) {
      last_draw_ = now;
      draw(false);
    }
  } else {
    int decile = total_ > 0 ? static_cast<int>(10 * done_ / total_) : 10;
    if (decile != last_decile_ && decile < 10) {
      last_decile_ = decile;
      draw(true);
    }
  }
}

void ProgressBar::finish(const std::string& status) {
  if (!status.empty()) status_ = status;
  draw(true);
}

void ProgressBar::draw(bool final_line) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? done_ / elapsed : 0;
  const double frac = total_ > 0 ? std::min(1.0, double(done_) / total_) : 1.0;
  const double eta = rate > 0 ? (total_ - done_) / rate : 0;
  constexpr int kWidth = 24;
  std::string bar(kWidth, ' ');
  for (int i = 0; i < static_cast<int>(frac * kWidth); ++i) bar[i] = '#';
  const bool finished = done_ >= total_;  // then the time it took, not an estimate
  std::fprintf(stderr, "%s%s [%s] %3.0f%% %.0f %s/s %s %s  %s%s", tty_ ? "\r\033[K" : "", label_.c_str(), bar.c_str(),
               100 * frac, rate, unit_.c_str(), finished ? "took" : "eta", format_duration(finished ? elapsed : eta).c_str(),
               status_.c_str(), (final_line || !tty_) ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace pfq::app
