#!/usr/bin/env bash
# setup-debian.sh — installs, as root on Debian 12, every Debian package pfq needs to build and
# test (compiler, Meson, header-only libraries, doctest, oneDNN for CPU convolutions, libjpeg-turbo
# (TurboJPEG and libjpeg APIs) for JPEG decoding, protobuf and ONNX's schema for ONNX export, Open MPI for data-parallel ranks
# (procps: the kill test's pgrep), the Fashion-MNIST data, Doxygen for the API reference).
# Idempotent: installs only what is missing. CUDA (nvcc, cuDNN) is not a Debian package: see build-notes.
# Usage: sudo tools/setup-debian.sh [--with-clang]   (--with-clang: clang + its sanitizer runtimes)
set -euo pipefail

pkgs=(meson ninja-build g++ pkg-config libeigen3-dev doctest-dev libstb-dev libcli11-dev
      nlohmann-json3-dev zlib1g-dev libdnnl-dev libturbojpeg0-dev libjpeg62-turbo-dev libprotobuf-dev protobuf-compiler libonnx-dev
      libopenmpi-dev openmpi-bin procps python3-venv dataset-fashion-mnist doxygen)
for arg in "$@"; do
  case "$arg" in
    --with-clang) pkgs+=(clang libclang-rt-14-dev) ;;
    *) echo "setup-debian.sh: unknown argument '$arg' (known: --with-clang)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-debian.sh: must run as root (apt-get install); try: sudo $0 $*" >&2
  exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-debian.sh: all ${#pkgs[@]} packages already installed"
  exit 0
fi

echo "setup-debian.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup-debian.sh: apt-get failed (log above)" >&2
  exit 1
fi
for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' \
    || { echo "setup-debian.sh: $p still not installed" >&2; exit 1; }
done
echo "setup-debian.sh: done"
