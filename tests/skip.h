// skip.h — run-time skipping for the doctest suites, which have only a static skip decorator:
// PFQ_SKIP(reason) prints "SKIP <test case>: <reason>" on stdout and returns from the case.
// tools/run-tests.sh counts these lines as skipped (not passed) and lists them; the suite
// executable also ends with "[pfq] N test cases skipped at run time" when any were.
#pragma once
#include <string>

namespace pfq::test {

// Prints the SKIP line for the running test case (once per case, even across subcases).
void report_skip(const std::string& reason);

}  // namespace pfq::test

// Use only at the top level of a TEST_CASE body (it returns from the enclosing function).
#define PFQ_SKIP(reason)                  \
  do {                                    \
    ::pfq::test::report_skip(reason);     \
    return;                               \
  } while (false)
