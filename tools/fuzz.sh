#!/usr/bin/env bash
# fuzz.sh — builds the libFuzzer targets of fuzz/ (clang, ASan+UBSan, meson option fuzz) and
# runs each for a while, seeded from fuzz/corpus/<target> and fuzz/regressions/<target>.
# A crash, leak, timeout, out-of-memory or sanitizer report fails the run; the input is
# saved under <build>/fuzz-work/<target>/ (copy it to fuzz/regressions/<target>/ once fixed).
# Prints per target: executions, coverage (cov: edges, ft: features), corpus size.
# Usage: tools/fuzz.sh [seconds-per-target [target...]]    (default 30 s, all targets)
# env: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_NICE (default 10), FUZZ_NO_BUILD=1 (use the built targets as they are)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-30}
shift $(( $# > 0 ? 1 : 0 ))
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(cifar idx image safetensors workflow_config pfqint)
builddir=${FUZZ_BUILD_DIR:-$root/build-fuzz}
nice_level=${FUZZ_NICE:-10}

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found (apt-get install clang libclang-rt-dev)" >&2
  exit 1
fi
if [ ! -f "$builddir/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$builddir" "$root" -Dfuzz=true -Dtests=false -Dcuda=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized || exit 1
fi
if [ -z "${FUZZ_NO_BUILD:-}" ] && ! ninja -C "$builddir" $(printf 'fuzz/fuzz_%s ' "${targets[@]}"); then
  echo "fuzz.sh: build failed" >&2
  exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export OMP_NUM_THREADS=1
failed=0
for t in "${targets[@]}"; do
  work="$builddir/fuzz-work/$t"
  mkdir -p "$work/corpus"
  log="$work/fuzz.log"
  seeds=("$root/fuzz/corpus/$t")
  [ -d "$root/fuzz/regressions/$t" ] && seeds+=("$root/fuzz/regressions/$t")
  max_len=16384
  [ "$t" = pfqint ] && max_len=65536  # a small integer model's graph JSON alone is 20 KB
  echo "== fuzz_$t for ${seconds}s (log $log)"
  nice -n "$nice_level" "$builddir/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$work/" \
    "$work/corpus" "${seeds[@]}" >"$log" 2>&1  # one process, one job (no -jobs: CPU is scarce)
  rc=$?
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | tail -n 1 | awk '{print $2}')
  last=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
  cov=$(sed -nE 's/.* cov: ([0-9]+) .*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+) .*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")
  peak=$(grep -E '^stat::peak_rss_mb' "$log" | tail -n 1 | awk '{print $2}')
  if [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
    echo "== fuzz_$t: FAILED (exit $rc); findings:"
    grep -E 'ERROR|SUMMARY|Test unit written|runtime error' "$log" | head -n 20
  else
    echo "== fuzz_$t: ok, ${execs:-?} executions, cov ${cov:-?} ft ${ft:-?} corpus ${corp:-?} peak RSS ${peak:-?} MB"
  fi
done
echo "fuzz.sh: ${#targets[@]} targets, $failed failed"
[ "$failed" -eq 0 ]
