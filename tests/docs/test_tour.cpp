// test_tour.cpp — keeps docs/tour.md true to the code: every stop names `file:first-last` and
// the code its first line starts with; the file must exist, hold those lines, and line `first`
// must still contain that code (so an edit that moves or renames it fails here, naming the
// stop). Also: the relative links of tour.md, library.md and qat.md resolve, the README links
// the tour, library.md and examples/, and every example is one file under 150 lines opening
// with what it teaches.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kRoot = PFQ_SOURCE_ROOT;

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE_MESSAGE(in.good(), "cannot read ", p.string());
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::string read_text(const fs::path& p) {
  std::ostringstream s;
  for (const auto& l : read_lines(p)) s << l << "\n";
  return s.str();
}

// Relative link targets ](target) of a markdown file, without #fragments; URLs skipped.
std::vector<std::string> relative_links(const std::string& text) {
  std::vector<std::string> out;
  static const std::regex link(R"(\]\(([^)\s]+)\))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), link); it != std::sregex_iterator(); ++it) {
    std::string t = (*it)[1].str();
    if (t.find("://") != std::string::npos || t.rfind("#", 0) == 0) continue;
    out.push_back(t.substr(0, t.find('#')));
  }
  return out;
}

}  // namespace

TEST_CASE("docs/tour.md: every stop's file:lines exist and start with the code the stop names") {
  const std::vector<std::string> tour = read_lines(kRoot / "docs/tour.md");
  static const std::regex ref(R"(^- `([^`:]+):([0-9]+)-([0-9]+)`, starting at `(.+)`$)");
  static const std::regex stop(R"(^### ([0-9]+)\. )");
  int stops = 0, refs = 0, refs_in_stop = 0;
  std::string current;
  for (const std::string& line : tour) {
    std::smatch m;
    if (std::regex_search(line, m, stop)) {
      if (stops > 0) CHECK_MESSAGE(refs_in_stop > 0, "tour stop '", current, "' names no file:lines");
      ++stops;
      current = line;
      refs_in_stop = 0;
      CHECK_MESSAGE(std::stoi(m[1].str()) == stops, "tour stops are numbered in order: ", line);
      continue;
    }
    if (!std::regex_match(line, m, ref)) continue;
    ++refs;
    ++refs_in_stop;
    const std::string file = m[1].str(), anchor = m[4].str();
    const size_t first = std::stoul(m[2].str()), last = std::stoul(m[3].str());
    INFO(current, "\n  ", line);
    REQUIRE_MESSAGE(fs::is_regular_file(kRoot / file), file, " does not exist");
    const std::vector<std::string> code = read_lines(kRoot / file);
    CHECK_MESSAGE(first >= 1, "line numbers start at 1");
    CHECK_MESSAGE(first <= last, "the range is first-last");
    CHECK_MESSAGE(last <= code.size(), file, " has ", code.size(), " lines, the range ends at ", last);
    if (first >= 1 && first <= code.size())
      CHECK_MESSAGE(code[first - 1].find(anchor) != std::string::npos, file, ":", first, " is now \"", code[first - 1],
                    "\", not the stop's \"", anchor, "\" (update docs/tour.md)");
  }
  CHECK_MESSAGE(refs_in_stop > 0, "tour stop '", current, "' names no file:lines");
  CHECK(stops >= 18);
  CHECK(refs >= stops);
}

TEST_CASE("docs: the tour's and library page's links resolve; the README links them and the examples") {
  for (const char* doc : {"docs/tour.md", "docs/library.md", "docs/qat.md"})
    for (const std::string& target : relative_links(read_text(kRoot / doc)))
      CHECK_MESSAGE(fs::exists(kRoot / "docs" / target), std::string(doc), " links ", target, ", which does not exist");
  const std::vector<std::string> readme = relative_links(read_text(kRoot / "README.md"));
  for (const char* want : {"docs/tour.md", "docs/library.md", "examples"})
    CHECK_MESSAGE(std::find(readme.begin(), readme.end(), want) != readme.end(), "README.md does not link ", std::string(want));
}

TEST_CASE("examples: each is one file under 150 lines opening with what it teaches, built by examples/meson.build") {
  const std::string build = read_text(kRoot / "examples/meson.build");
  int n = 0;
  for (const auto& e : fs::directory_iterator(kRoot / "examples")) {
    if (e.path().extension() != ".cpp") continue;
    ++n;
    const std::vector<std::string> lines = read_lines(e.path());
    const std::string name = e.path().stem().string();
    CHECK_MESSAGE(lines.size() < 150, name, ".cpp has ", lines.size(), " lines");
    REQUIRE(!lines.empty());
    CHECK_MESSAGE(lines[0].rfind("// " + name + ".cpp — teaches", 0) == 0, name, ".cpp must open with '// ", name,
                  ".cpp — teaches ...'");
    CHECK_MESSAGE(build.find("'" + name + "'") != std::string::npos, name, " is not in examples/meson.build");
  }
  CHECK(n >= 5);
}
