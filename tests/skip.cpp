// skip.cpp — the listener behind PFQ_SKIP (skip.h): it remembers the running test case's name
// so a skip line can name it, and prints the count of run-time skips when the run ends.
#include "tests/skip.h"

#include <doctest/doctest.h>

#include <iostream>
#include <set>

namespace pfq::test {
namespace {

std::string g_current_case;          // the test case now running ("" outside one)
std::set<std::string> g_skipped;     // cases that reported a skip, each counted once

struct SkipListener : doctest::IReporter {
  explicit SkipListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {
    if (!g_skipped.empty())
      std::cout << "[pfq] " << g_skipped.size() << " test cases skipped at run time (counted as passed by doctest)"
                << std::endl;
  }
  void test_case_start(const doctest::TestCaseData& in) override { g_current_case = in.m_name; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("pfq-skip", 1, SkipListener);

}  // namespace

void report_skip(const std::string& reason) {
  const std::string name = g_current_case.empty() ? "(outside a test case)" : g_current_case;
  if (!g_skipped.insert(name).second) return;
  // One line, flushed before doctest's own output of the case: tools/run-tests.sh counts and
  // lists the lines starting "SKIP ".
  std::cout << "SKIP " << name << ": " << reason << std::endl;
}

}  // namespace pfq::test
