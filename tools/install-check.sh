#!/usr/bin/env bash
# install-check.sh — proves that libpfq is usable from outside the tree: `meson install` of a
# build into a temporary staging folder (--destdir), then, from a folder outside the repository,
# with the staged pfq.pc (its prefix pointed at the staging folder):
#   1. every installed header compiles in one translation unit (the public set is closed: no
#      installed header includes one that was left out) and no kernel header was installed;
#   2. every example of examples/ builds with `c++ -std=c++20 $(pkg-config --cflags --libs pfq)`
#      against the shared library, and the two that need no data run;
#   3. a tiny Meson project builds examples/pfq_by_hand.cpp with dependency('pfq', static : true)
#      (the static library and pfq.pc's private fields) and runs it.
# Ends with "N passed, N failed"; non-zero on failure.   Usage: tools/install-check.sh [build-dir]
# env: CXX (default c++), INSTALL_CHECK_KEEP=1 keeps the temporary folder.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=$(cd "${1:-$root/build}" && pwd) || { echo "install-check: no build folder ${1:-$root/build}"; echo "0 passed, 1 failed"; exit 1; }
cxx=${CXX:-c++}
pass=0
fail=0
tmp=$(mktemp -d)
[ "${INSTALL_CHECK_KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT
check() {  # check NAME COMMAND...: runs the command (output in $tmp/NAME.log), counts it
  local name=$1
  shift
  if "$@" >"$tmp/$name.log" 2>&1; then
    echo "PASS $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name (exit $?); its output:"
    tail -n 40 "$tmp/$name.log"
    fail=$((fail + 1))
  fi
}
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit $?
}

stage=$tmp/stage
if ! meson install -C "$builddir" --destdir "$stage" >"$tmp/install.log" 2>&1; then
  tail -n 40 "$tmp/install.log"
  echo "install-check: meson install failed"
  fail=$((fail + 1))
  finish
fi
pc=$(find "$stage" -name pfq.pc | head -n 1)
if [ -z "$pc" ]; then
  echo "install-check: no pfq.pc under $stage"
  fail=$((fail + 1))
  finish
fi
# A staged install keeps the configured prefix in pfq.pc; point it at the staging folder (a
# relocatable pfq.pc, prefix=${pcfiledir}/..., needs nothing).
sed -i "s|^prefix=/|prefix=$stage/|" "$pc"
export PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
libdir=$(pkg-config --variable=libdir pfq)
includedir=$(pkg-config --variable=includedir pfq)
echo "installed: $(cd "$stage" && find . -name 'libpfq*' | sort | tr '\n' ' ')"
echo "headers:   $(find "$includedir/pfq" -name '*.h' | wc -l) under $includedir/pfq"
echo "pkg-config --cflags --libs pfq: $(pkg-config --cflags --libs pfq)"

check installed-libraries test -f "$libdir/libpfq.a" -a -e "$libdir/libpfq.so"
check no-kernel-headers bash -c "! find '$includedir/pfq' -path '*/cpu/*' -o -path '*/cuda/*' | grep -q ."

# 1. All installed headers in one translation unit, included the way users write them.
mkdir -p "$tmp/outside"
(cd "$includedir" && find pfq -name '*.h' | sort | sed 's|.*|#include <&>|') >"$tmp/outside/all_headers.cpp"
echo 'int main() { return 0; }' >>"$tmp/outside/all_headers.cpp"
# shellcheck disable=SC2046  # pkg-config's output is a list of flags
check all-headers-compile $cxx -std=c++20 -fsyntax-only $(pkg-config --cflags pfq) "$tmp/outside/all_headers.cpp"

# 2. The examples, built outside the tree with pkg-config against the shared library.
cp "$root"/examples/*.h "$tmp/outside/"  # what the examples share (fashion_mnist.h)
for src in "$root"/examples/*.cpp; do
  name=$(basename "$src" .cpp)
  cp "$src" "$tmp/outside/"
  # shellcheck disable=SC2046
  check "pkg-config-build-$name" $cxx -std=c++20 -O1 -o "$tmp/outside/$name" "$tmp/outside/$name.cpp" \
    $(pkg-config --cflags --libs pfq)
done
for name in new_op_gradcheck pfq_by_hand; do
  check "pkg-config-run-$name" env LD_LIBRARY_PATH="$libdir" OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} \
    TMPDIR="$tmp" "$tmp/outside/$name"
done
check shared-library-linked bash -c "LD_LIBRARY_PATH='$libdir' ldd '$tmp/outside/new_op_gradcheck' | grep -q '$libdir/libpfq.so'"

# 3. A Meson project outside the tree: dependency('pfq'), static.
proj=$tmp/meson-consumer
mkdir -p "$proj"
cp "$root/examples/pfq_by_hand.cpp" "$proj/"
cat >"$proj/meson.build" <<'EOF'
project('pfq-consumer', 'cpp', default_options : ['cpp_std=c++20'])
executable('pfq_by_hand', 'pfq_by_hand.cpp', dependencies : dependency('pfq', static : true))
EOF
check meson-consumer-setup meson setup "$proj/build" "$proj"
check meson-consumer-build meson compile -C "$proj/build"
check meson-consumer-static bash -c "! ldd '$proj/build/pfq_by_hand' | grep -q libpfq"
check meson-consumer-run env OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TMPDIR="$tmp" "$proj/build/pfq_by_hand"
finish
