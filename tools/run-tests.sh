#!/usr/bin/env bash
# run-tests.sh — configures (if needed) and builds pfq, runs every doctest suite executable
# (pfq-test-unit, -gradcheck, -e2e, -cuda; those that exist) and ends with the plain line
# "N passed, N failed, N skipped" counting test cases over all suites, after the list of the
# skipped cases with their reasons. A case that cannot run here (no GPU, no Fashion-MNIST, no
# oneDNN, no mount privilege) prints "SKIP <case>: <reason>" (tests/skip.h): doctest counts it
# as passed, this script counts it as skipped. Exit status non-zero if a build, a test case or
# a suite (crash, sanitizer report, timeout) failed; a crash counts >= 1 failure.
# Usage: tools/run-tests.sh [build-dir [suite...]] (named suites: only their executables are
# built, plus pfq and the examples for e2e; none named: everything)   env: MESON_SETUP_ARGS, SUITE_TIMEOUT (s),
# SUITE_ARGS (one extra doctest argument for every suite, e.g. '-tce=*slow case*,*other*')
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=${1:-$root/build}
shift $(( $# > 0 ? 1 : 0 ))
suites=("$@")
targets=()  # named suites: build only their executables (and pfq and the examples for e2e,
for suite in "${suites[@]}"; do  # which runs them as child processes)
  targets+=("tests/pfq-test-$suite")
  [ "$suite" = e2e ] && targets+=(apps/pfq pfq-examples)
done
[ ${#suites[@]} -eq 0 ] && suites=(unit gradcheck e2e cuda)
timeout_s=${SUITE_TIMEOUT:-1800}

finish() {  # finish PASSED FAILED [SKIPPED]
  echo "$1 passed, $2 failed, ${3:-0} skipped"
  [ "$2" -eq 0 ]
  exit $?
}

if [ ! -f "$builddir/build.ninja" ]; then
  # shellcheck disable=SC2086  # MESON_SETUP_ARGS is a list of options
  if ! meson setup "$builddir" "$root" ${MESON_SETUP_ARGS:-}; then
    echo "run-tests.sh: meson setup failed" >&2
    finish 0 1
  fi
fi
if ! meson compile -C "$builddir" "${targets[@]}"; then
  echo "run-tests.sh: build failed" >&2
  finish 0 1
fi

total_pass=0
total_fail=0
total_skip=0
skipped_list=$(mktemp)
trap 'rm -f "$skipped_list"' EXIT
ran=0
mkdir -p "$builddir/meson-logs"
for suite in "${suites[@]}"; do
  exe="$builddir/tests/pfq-test-$suite"
  if [ ! -x "$exe" ]; then
    echo "== suite $suite: no tests (not built)"
    continue
  fi
  ran=$((ran + 1))
  log="$builddir/meson-logs/pfq-test-$suite.log"
  echo "== suite $suite"
  start=$SECONDS
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} timeout --kill-after=30 "$timeout_s" \
    "$exe" --no-intro --no-version ${SUITE_ARGS:+"$SUITE_ARGS"} 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  # doctest: "[doctest] test cases: 12 | 11 passed | 1 failed | 0 skipped"
  summary=$(grep -E '^\[doctest\] test cases:' "$log" | tail -n 1)
  if [[ $summary =~ test\ cases:\ *([0-9]+)\ *\|\ *([0-9]+)\ passed\ *\|\ *([0-9]+)\ failed ]]; then
    pass=${BASH_REMATCH[2]}
    fail=${BASH_REMATCH[3]}
  else
    pass=0
    fail=0
  fi
  # cases that skipped at run time (tests/skip.h) passed in doctest's count: move them
  skip=$(grep -c '^SKIP ' "$log")
  grep '^SKIP ' "$log" | sed "s/^SKIP /  [$suite] /" >>"$skipped_list"
  pass=$((pass > skip ? pass - skip : 0))
  note=""
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
    fail=1  # crashed, timed out or failed outside a test case (e.g. a sanitizer report at exit)
    case $rc in
      124|137) note=" (timed out after ${timeout_s}s)" ;;
      *) note=" (exit status $rc without a failed test case: crash or error outside tests)" ;;
    esac
  fi
  echo "== suite $suite: $pass passed, $fail failed, $skip skipped in $((SECONDS - start))s$note"
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  total_skip=$((total_skip + skip))
done

if [ "$ran" -eq 0 ]; then
  echo "run-tests.sh: no test suite executable found in $builddir/tests" >&2
  finish 0 1
fi
if [ "$total_skip" -gt 0 ]; then
  echo "== skipped (cannot run here; not counted as passed):"
  cat "$skipped_list"
fi
finish "$total_pass" "$total_fail" "$total_skip"
