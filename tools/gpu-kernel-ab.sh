#!/usr/bin/env bash
# gpu-kernel-ab.sh — a short GPU check of pfq's kernel choices, for a lease too short for
# tools/gpu-check.sh: batch norm in training (PFQ_CUDA_BN: own kernels, the default, or cudnn)
# and depthwise convolutions (PFQ_CUDA_DEPTHWISE: cudnn, the default, or own). Builds with CUDA
# (third_party/ carried, as gpu-check.sh), runs the cuda suite once per variant (in parallel),
# times `pfq bench --device cuda` per variant and PyTorch eager (fp32, NCHW and channels-last),
# interleaved for ROUNDS rounds (each pfq line with the step's device-busy and host-launch
# times), profiles MobileNetV1's step (PROFILE=1: device-synchronised and split by layer shape;
# the host's launch time per op) and, with FULL_WORKFLOW=1, runs the default workflow on CUDA.
# VARIANTS, MODELS, ROUNDS, STEPS override the defaults. Every step is time-boxed; everything
# lands in $OUT/all.tar.gz. PyTorch's kernel tables: TORCH_PROFILE=1.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
OUT=${OUT:-$root/gpu-ab-out}
MODELS=${MODELS:-resnet20 mobilenetv1 mobilenetv2}
read -r -a VARIANTS <<< "${VARIANTS:-default PFQ_CUDA_BN=cudnn PFQ_CUDA_DEPTHWISE=own}"
ROUNDS=${ROUNDS:-2}   # pfq (each variant), PyTorch NCHW and channels-last, interleaved
STEPS=${STEPS:-10}
PROFILE=${PROFILE:-1}
mkdir -p "$OUT"
export PKG_CONFIG_LIBDIR="$root/third_party/pkgconfig"
command -v pkg-config >/dev/null 2>&1 || export PKG_CONFIG="$root/third_party/bin/pkg-config"
t0=$SECONDS
pack() { (cd "$OUT" && tar czf all.tar.gz --exclude=all.tar.gz ./* && find . -maxdepth 1 -type f ! -name all.tar.gz -delete); }
# One variant's environment: "default" is none.
venv() { [ "$1" = default ] && echo "PFQ_AB_VARIANT=default" || echo "$1"; }
{ meson setup build-gpu --buildtype=release -Dcuda=enabled -Dgpu_arch=90 -Dtests=true &&
  ninja -C build-gpu -j "$(nproc)" apps/pfq tests/pfq-test-cuda; } > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; pack; exit 1; }
echo "built in $((SECONDS - t0)) s"
for v in "${VARIANTS[@]}"; do
  env "$(venv "$v")" timeout 150 build-gpu/tests/pfq-test-cuda --no-version > "$OUT/suite-${v//[=_]/-}.log" 2>&1 &
done
wait
grep -H -E "^\[doctest\] (test cases|assertions)|ERROR" "$OUT"/suite-*.log | head -30
echo "suites done at $((SECONDS - t0)) s"
bench=(build-gpu/apps/pfq bench --device cuda --batch-size 128 --size 32 --classes 100 --warmup 3 --steps "$STEPS" --models $MODELS
       --modes train)
torch=(timeout 90 python3 bench/torch_reference.py --device cuda --batch 128 --size 32 --classes 100 --warmup 3 --steps "$STEPS"
       --models $MODELS --modes train)
[ "${TORCH_PROFILE:-0}" = 1 ] && torch+=(--profile 2 --profile-rows 40)
for rep in $(seq "$ROUNDS"); do
  for v in "${VARIANTS[@]}"; do env "$(venv "$v")" timeout 90 "${bench[@]}" > "$OUT/pfq-${v//[=_]/-}-$rep.txt" 2>&1; done
  "${torch[@]}" > "$OUT/torch-nchw-$rep.txt" 2>&1
  "${torch[@]}" --channels-last > "$OUT/torch-cl-$rep.txt" 2>&1
done
echo "benchmarks done at $((SECONDS - t0)) s"
for f in "$OUT"/pfq-*.txt "$OUT"/torch-*.txt; do echo "== $(basename "$f")"; grep -E "median" "$f" | grep -v '"'; done
if [ "$PROFILE" = 1 ]; then
  prof=(build-gpu/apps/pfq bench --device cuda --batch-size 128 --size 32 --classes 100 --warmup 2 --steps 3 --models mobilenetv1
        --modes train)
  timeout 60 "${prof[@]}" --profile 3 --profile-shapes > "$OUT/profile-shapes.txt" 2>&1
  timeout 60 "${prof[@]}" --profile 5 --profile-host > "$OUT/profile-host.txt" 2>&1
fi
if [ "${FULL_WORKFLOW:-0}" = 1 ] && [ -d third_party/fashion-mnist ]; then
  timeout 150 build-gpu/apps/pfq workflow --device cuda --threads 4 --data-dir third_party/fashion-mnist --out "$OUT/wf" \
    > "$OUT/workflow-cuda.log" 2>&1
  echo "workflow rc $? at $((SECONDS - t0)) s"; tail -15 "$OUT/workflow-cuda.log"
  (cd "$OUT/wf" && find . -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' \) -exec cp --parents {} "$OUT/" \;) 2>/dev/null
  rm -rf "$OUT/wf"
fi
echo "done at $((SECONDS - t0)) s"
pack
