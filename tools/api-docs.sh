#!/usr/bin/env bash
# api-docs.sh — the API reference: Doxygen (Debian `doxygen`) over libpfq's public headers, the
# set `meson install` puts under include/pfq/ (read from the build's install plan, so the list in
# meson.build is the only one). Writes <build>/api-docs/html/index.html. Fails (exit 1) on any
# Doxygen warning — a public symbol without a comment, or a comment it cannot read — listing them.
# Usage: tools/api-docs.sh [BUILD_DIR]   (a configured Meson build folder; default build)
# Also `ninja -C BUILD api-docs`. Ends with "N passed, N failed" (1 case) for .ci/run.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
[ -d "$build" ] || build="$root/$build"
if ! command -v doxygen >/dev/null; then
  echo "api-docs.sh: doxygen not found (apt-get install doxygen, or tools/setup-debian.sh)" >&2
  echo "0 passed, 1 failed"; exit 1
fi
if [ ! -f "$build/meson-info/intro-installed.json" ]; then
  echo "api-docs.sh: $build is not a configured Meson build folder (meson setup $build first)" >&2
  echo "0 passed, 1 failed"; exit 1
fi
out="$build/api-docs"
mkdir -p "$out"
# The installed headers: source path -> <prefix>/include/pfq/<path>; the source paths relative
# to the build's source root, then read from this checkout.
headers=$(python3 - "$build/meson-info" <<'PY'
import json, os, sys
info = sys.argv[1]
src = json.load(open(os.path.join(info, "meson-info.json")))["directories"]["source"]
installed = json.load(open(os.path.join(info, "intro-installed.json")))
rel = sorted(os.path.relpath(s, src) for s, d in installed.items() if s.endswith(".h") and "/include/pfq/" in d)
print("\n".join(rel))
PY
)
n=$(printf '%s\n' "$headers" | grep -c .)
if [ "$n" -eq 0 ]; then
  echo "api-docs.sh: the build installs no headers under include/pfq/ (meson.build's pfq_public_headers)" >&2
  echo "0 passed, 1 failed"; exit 1
fi
log="$out/warnings.log"
rm -f "$log"
{
  cat "$root/docs/api/Doxyfile"
  printf 'INPUT = '; printf '%s\n' "$headers" | sed "s|^|$root/|" | tr '\n' ' '; echo
  echo "OUTPUT_DIRECTORY = $out"
  echo "WARN_LOGFILE = $log"
  echo "STRIP_FROM_PATH = $root"
  echo "STRIP_FROM_INC_PATH = $root"
} | (cd "$root" && doxygen -) >"$out/doxygen.out" 2>&1
rc=$?
warnings=$(grep -c 'warning:' "$log" 2>/dev/null || true)
if [ "$rc" -ne 0 ] || [ "${warnings:-0}" -ne 0 ]; then
  [ "$rc" -ne 0 ] && { echo "api-docs.sh: doxygen exited with $rc:"; tail -n 20 "$out/doxygen.out"; }
  echo "api-docs.sh: ${warnings:-0} Doxygen warnings over the $n public headers (each public symbol needs a /// comment):"
  sed "s|^$root/||" "$log" | head -n 200
  echo "0 passed, 1 failed"
  exit 1
fi
echo "api-docs.sh: $n public headers, no warnings; reference in $out/html/index.html"
echo "1 passed, 0 failed"
