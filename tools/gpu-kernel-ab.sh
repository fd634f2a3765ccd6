#!/usr/bin/env bash
# gpu-depthwise-ab.sh — a short GPU check of the depthwise convolution kernels (core/cuda/
# depthwise.cu), for a lease too short for tools/gpu-check.sh: builds with CUDA (third_party/
# carried, as gpu-check.sh), runs the cuda suite with cuDNN's depthwise kernels and with pfq's
# (PFQ_OWN_DEPTHWISE=1), then times `pfq bench --device cuda` both ways, alternated twice, PyTorch eager
# (fp32, NCHW and channels-last) beside them, and profiles the MobileNetV1 QAT step. Everything
# lands in $OUT/all.tar.gz.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
OUT=${OUT:-$root/gpu-ab-out}
mkdir -p "$OUT"
export PKG_CONFIG_LIBDIR="$root/third_party/pkgconfig"
command -v pkg-config >/dev/null 2>&1 || export PKG_CONFIG="$root/third_party/bin/pkg-config"
{ meson setup build-gpu --buildtype=release -Dcuda=enabled -Dgpu_arch=90 -Dtests=true &&
  ninja -C build-gpu -j "$(nproc)" apps/pfq tests/pfq-test-cuda; } > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
timeout 90 build-gpu/tests/pfq-test-cuda --no-version > "$OUT/suite.log" 2>&1
PFQ_OWN_DEPTHWISE=1 timeout 90 build-gpu/tests/pfq-test-cuda --no-version > "$OUT/suite-own.log" 2>&1
grep -E "^\[doctest\] (test cases|assertions)|ERROR" "$OUT/suite.log" "$OUT/suite-own.log" | head -20
bench=(build-gpu/apps/pfq bench --device cuda --batch-size 128 --size 32 --classes 100 --warmup 3 --steps 10
       --models mobilenetv1 mobilenetv2 resnet20 --modes train infer)
for rep in 1 2; do
  PFQ_OWN_DEPTHWISE=1 "${bench[@]}" > "$OUT/pfq-own-$rep.txt" 2>&1
  "${bench[@]}" > "$OUT/pfq-cudnn-$rep.txt" 2>&1
done
torch=(python3 bench/torch_reference.py --device cuda --batch 128 --size 32 --classes 100 --warmup 3 --steps 10
       --models mobilenetv1 mobilenetv2)
"${torch[@]}" > "$OUT/torch-nchw.txt" 2>&1
"${torch[@]}" --channels-last > "$OUT/torch-cl.txt" 2>&1
build-gpu/apps/pfq bench --device cuda --batch-size 128 --size 32 --classes 100 --warmup 2 --steps 3 --profile 3 \
  --models mobilenetv1 --modes qat train > "$OUT/profile-qat.txt" 2>&1
for f in "$OUT"/pfq-*.txt "$OUT"/torch-*.txt; do echo "== $(basename "$f")"; grep -E "median" "$f"; done
# One archive: the device transfer brings back a limited number of files.
(cd "$OUT" && tar czf all.tar.gz --exclude=all.tar.gz ./* && find . -maxdepth 1 -type f ! -name all.tar.gz -delete)
