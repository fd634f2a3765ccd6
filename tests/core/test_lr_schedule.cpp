// test_lr_schedule.cpp — learning-rate schedule values at chosen (fractional) epochs, the
// warmup wrapper, the name factory and its errors. Optimizers are in test_optim.cpp.
#include <doctest/doctest.h>

#include "core/error.h"
#include "core/optim/lr_schedule.h"

using namespace pfq;
using namespace pfq::optim;

TEST_CASE("lr schedule: constant, step, multistep") {
  LrSchedule c = make_schedule("constant", {.base_lr = 0.1});
  CHECK(c(0) == 0.1);
  CHECK(c(50.5) == 0.1);

  LrSchedule s = make_schedule("step", {.base_lr = 0.1, .step_size = 30, .gamma = 0.1});
  CHECK(s(0) == doctest::Approx(0.1));
  CHECK(s(29.99) == doctest::Approx(0.1));
  CHECK(s(30) == doctest::Approx(0.01));
  CHECK(s(59) == doctest::Approx(0.01));
  CHECK(s(60) == doctest::Approx(0.001));

  LrSchedule m = make_schedule("multistep", {.base_lr = 0.1, .gamma = 0.1, .milestones = {30, 60, 80}});
  CHECK(m(29.5) == doctest::Approx(0.1));
  CHECK(m(30) == doctest::Approx(0.01));  // a milestone counts from its own epoch on
  CHECK(m(60) == doctest::Approx(0.001));
  CHECK(m(80.2) == doctest::Approx(1e-4));
  CHECK(m(100) == doctest::Approx(1e-4));
  CHECK(m.kind() == ScheduleKind::MultiStep);
}

TEST_CASE("lr schedule: cosine to eta_min, per iteration") {
  LrSchedule c = make_schedule("cosine", {.base_lr = 0.1, .total = 100});
  CHECK(c(0) == doctest::Approx(0.1));
  CHECK(c(25) == doctest::Approx(0.0853553390593));  // 0.05 * (1 + cos(pi / 4))
  CHECK(c(50) == doctest::Approx(0.05));
  CHECK(c(100) == doctest::Approx(0.0).epsilon(1e-12));
  CHECK(c(120) == doctest::Approx(0.0).epsilon(1e-12));  // stays at eta_min, no restart
  LrSchedule e = make_schedule("cosine", {.base_lr = 0.1, .total = 100, .eta_min = 0.001});
  CHECK(e(50) == doctest::Approx(0.0505));  // 0.001 + 0.099 / 2
  CHECK(e(100) == doctest::Approx(0.001));

  const double t = fractional_epoch(2, 250, 500);
  CHECK(t == 2.5);
  CHECK(c(t) < c(2));
  CHECK(c(t) > c(3));
  CHECK(fractional_epoch(3, 0, 500) == 3.0);
}

TEST_CASE("lr schedule: linear warmup multiplies the first epochs") {
  LrSchedule c = make_schedule("cosine", {.base_lr = 1.0, .total = 10, .warmup = 2, .warmup_start_factor = 0.1});
  CHECK(c(0) == doctest::Approx(0.1));
  CHECK(c(1) == doctest::Approx(0.5365405419812));  // 0.55 * 0.5 * (1 + cos(pi / 10))
  CHECK(c(2) == doctest::Approx(0.9045084971875));  // 0.5 * (1 + cos(pi / 5)), warmup over
  CHECK(c.warmup_factor(1) == doctest::Approx(0.55));

  LrSchedule s = make_schedule("step", {.base_lr = 0.1, .step_size = 30, .gamma = 0.1, .warmup = 5, .warmup_start_factor = 0.2});
  CHECK(s(0) == doctest::Approx(0.02));
  CHECK(s(2.5) == doctest::Approx(0.06));  // 0.1 * (0.2 + 0.8 * 0.5)
  CHECK(s(5) == doctest::Approx(0.1));
  CHECK(s(30) == doctest::Approx(0.01));
  CHECK(s.describe() == "step(base_lr=0.1, step_size=30, gamma=0.1) + warmup(5 epochs from 0.2x)");
}

TEST_CASE("lr schedule: factory and argument errors name the bad value") {
  CHECK_THROWS_WITH_AS(make_schedule("cosin", {}), doctest::Contains("unknown lr schedule 'cosin' (expected constant|step|multistep|cosine)"), Error);
  CHECK_THROWS_WITH_AS(make_schedule("step", {.step_size = 0}), doctest::Contains("step_size must be > 0 epochs, got 0"), Error);
  CHECK_THROWS_WITH_AS(make_schedule("step", {.gamma = -0.5}), doctest::Contains("gamma must be > 0, got -0.5"), Error);
  CHECK_THROWS_WITH_AS(make_schedule("multistep", {}), doctest::Contains("at least one milestone"), Error);
  CHECK_THROWS_WITH_AS(make_schedule("multistep", {.milestones = {60, 30}}), doctest::Contains("sorted, got 60 before 30"), Error);
  CHECK_THROWS_WITH_AS(make_schedule("cosine", {}), doctest::Contains("total must be > 0 epochs, got 0"), Error);
  CHECK_THROWS_WITH_AS(make_schedule("constant", {.base_lr = -1}), doctest::Contains("base_lr must be >= 0, got -1"), Error);
  CHECK_THROWS_WITH_AS(make_schedule("constant", {.warmup = 2, .warmup_start_factor = 1.5}), doctest::Contains("warmup_start_factor must be in [0, 1], got 1.5"), Error);
  LrSchedule c = make_schedule("constant", {});
  CHECK_THROWS_WITH_AS(c(-1), doctest::Contains("evaluated at epoch -1"), Error);
  CHECK_THROWS_WITH_AS(fractional_epoch(0, 5, 5), doctest::Contains("iter 5"), Error);
}
