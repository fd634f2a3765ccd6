#!/usr/bin/env bash
# tsan-loader.sh — ThreadSanitizer check of the data loader's worker threads (data/loader.cpp,
# and the state ImageFolderDataset shares between them): builds libpfq and the loader tests
# (tests/pfq-test-loader) with -Db_sanitize=thread, no CUDA, and runs them. OMP_NUM_THREADS=1:
# libgomp is not TSan-instrumented and reports false races on its barriers, so OpenMP stays
# single-threaded; the loader's own std::threads, mutexes and condition variables are what is
# checked. Exit status non-zero on a build failure, a failing test or any TSan report.
# Usage: tools/tsan-loader.sh [build-dir]      (default build-tsan)
# env: TSAN_JOBS (ninja -j; default ninja's), TSAN_NICE (default 0), CC/CXX at the first setup
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=${1:-$root/build-tsan}
nice_level=${TSAN_NICE:-0}
start=$SECONDS

if [ ! -f "$builddir/build.ninja" ]; then
  nice -n "$nice_level" meson setup "$builddir" "$root" -Db_sanitize=thread -Db_lundef=false -Dcuda=disabled -Donnx=disabled -Dfuzz=false \
    -Doptimization=1 -Ddebug=false -Dcpp_args=-g1 -Dc_args=-g1 || exit 1
fi
if ! nice -n "$nice_level" ninja -C "$builddir" ${TSAN_JOBS:+-j "$TSAN_JOBS"} tests/pfq-test-loader; then
  echo "tsan-loader.sh: build failed" >&2
  exit 1
fi
built=$SECONDS

export OMP_NUM_THREADS=1
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
log="$builddir/meson-logs/tsan-loader.log"
nice -n "$nice_level" "$builddir/tests/pfq-test-loader" --no-intro --no-version -ts=data 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if grep -q 'WARNING: ThreadSanitizer' "$log"; then
  echo "tsan-loader.sh: ThreadSanitizer reported (see $log)" >&2
  rc=1
fi
echo "tsan-loader.sh: build $((built - start)) s, tests $((SECONDS - built)) s, exit $rc"
exit "$rc"
