#!/usr/bin/env bash
# compare.sh — issue #7's CPU comparison in one command: `pfq bench` against PyTorch
# (bench/torch_reference.py, NCHW and channels-last) on the same machine, same threads and batch.
# For each model and mode it runs pfq, torch NCHW and torch channels-last one after another,
# --rounds times, each in its own process (peak RSS is per process and monotonic, so one process
# per model and mode makes the peaks comparable), then prints the ratio table of
# bench/compare_table.py (median step ms, pfq / best torch layout, peak RSS, qat / float train,
# the issue's targets met or missed) and writes it as JSON and Markdown into --out.
# qat runs pfq only (PyTorch has no twin of pfq's QAT step here), as `pfq bench --modes train qat`:
# its ratio is that process's QAT and float steps alternating (qat_over_float_train_paired).
#
#   bench/compare.sh                                   # the full comparison (long: minutes per model)
#   bench/compare.sh --models resnet20 --modes train,infer --batch 8 --steps 2 --rounds 1
#   bench/compare.sh --size 224 --classes 1000 --models resnet18,mobilenetv1,mobilenetv2 --batch 32 \
#     --modes train,infer --steps 3 --warmup 1 --rounds 2    # ImageNet variants vs torchvision's models
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
torch_python=/usr/bin/python3  # Debian's python3-torch; `python3` on PATH may lack torch
models="resnet20,mobilenetv1,mobilenetv2"
modes="train,infer,qat"
threads=2 batch=128 rounds=3 steps=10 warmup=3
size=32 classes=100  # > 64 px: both sides build the "imagenet" variants (torchvision's models for PyTorch)
bn_stats=""  # qat: pfq bench's default (pfq finetune's)
out=runs/bench-compare
pfq=build/apps/pfq

# The usage text with the defaults, captured before the options below change the variables.
usage_text=$(cat <<EOF
usage: bench/compare.sh [options]
  --models LIST   comma-separated (default $models)
  --modes LIST    comma-separated, of train, infer, qat (default $modes)
  --threads N     threads of both frameworks (default $threads)
  --batch N       batch size (default $batch)
  --size N        input height and width; above 64 the ImageNet variants (default $size)
  --classes N     classifier outputs (default $classes)
  --rounds N      pfq / torch NCHW / torch channels-last alternations per model and mode (default $rounds)
  --steps N       timed steps per process (default $steps)
  --warmup N      untimed steps per process (default $warmup)
  --out DIR       output folder: raw/*.json, settings.json, compare.json, compare.md (default $out)
  --pfq PATH      the pfq binary (default $pfq)
  --bn-stats S    qat: the folded BN's batch statistics, float (exact, two convolutions) or quantized
                  (one convolution) (default: pfq finetune's)
EOF
)
usage() { printf '%s\n' "$usage_text"; }

need_value() { [[ $# -ge 2 && -n $2 ]] || { echo "compare.sh: $1 needs a value" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --models) need_value "$@"; models=$2; shift 2 ;;
    --modes) need_value "$@"; modes=$2; shift 2 ;;
    --threads) need_value "$@"; threads=$2; shift 2 ;;
    --batch) need_value "$@"; batch=$2; shift 2 ;;
    --size) need_value "$@"; size=$2; shift 2 ;;
    --classes) need_value "$@"; classes=$2; shift 2 ;;
    --rounds) need_value "$@"; rounds=$2; shift 2 ;;
    --steps) need_value "$@"; steps=$2; shift 2 ;;
    --warmup) need_value "$@"; warmup=$2; shift 2 ;;
    --out) need_value "$@"; out=$2; shift 2 ;;
    --pfq) need_value "$@"; pfq=$2; shift 2 ;;
    --bn-stats) need_value "$@"; bn_stats=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

for n in threads batch size classes rounds steps; do
  [[ ${!n} =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --$n must be a positive integer, got '${!n}'" >&2; exit 2; }
done
[[ $warmup =~ ^[0-9]+$ ]] || { echo "compare.sh: --warmup must be a non-negative integer, got '$warmup'" >&2; exit 2; }
IFS=', ' read -r -a model_list <<<"$models"
IFS=', ' read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
  [[ $m == train || $m == infer || $m == qat ]] || { echo "compare.sh: mode '$m': expected train, infer or qat" >&2; exit 2; }
done
[[ -x $pfq ]] || { echo "compare.sh: no pfq binary at '$pfq' (build it: ninja -C build, or pass --pfq)" >&2; exit 2; }
"$torch_python" -c 'import torch' 2>/dev/null || { echo "compare.sh: $torch_python cannot import torch (apt-get install python3-torch)" >&2; exit 2; }

table="$torch_python $repo/bench/compare_table.py"
mkdir -p "$out/raw"
rm -f "$out"/raw/*.json
# Both frameworks see the same thread count (OpenMP, and OpenBLAS/MKL-DNN under PyTorch).
export OMP_NUM_THREADS=$threads

$table settings --out "$out" --pfq "$pfq" --models "${model_list[@]}" --modes "${mode_list[@]}" --threads "$threads" \
  --batch "$batch" --size "$size" --classes "$classes" --rounds "$rounds" --steps "$steps" --warmup "$warmup"

# run NAME CMD...: one process, its JSON document on stdout into raw/NAME.json.
run() {
  local name=$1
  shift
  echo "compare.sh: $name" >&2
  "$@" >"$out/raw/$name.json.tmp" 2>"$out/raw/$name.log" || {
    echo "compare.sh: '$*' failed; its output: $out/raw/$name.log" >&2
    tail -5 "$out/raw/$name.log" >&2
    exit 1
  }
  mv "$out/raw/$name.json.tmp" "$out/raw/$name.json"
}

common=(--threads "$threads" --steps "$steps" --warmup "$warmup" --size "$size" --classes "$classes")
for model in "${model_list[@]}"; do
  for mode in "${mode_list[@]}"; do
    for ((r = 1; r <= rounds; r++)); do
      if [[ $mode == qat ]]; then  # with train, for the ratio of the two steps alternating in one process
        run "pfq-$model-$mode-r$r" "$pfq" bench --json --models "$model" --modes train qat --batch-size "$batch" \
          ${bn_stats:+--bn-stats "$bn_stats"} "${common[@]}"
        continue
      fi
      run "pfq-$model-$mode-r$r" "$pfq" bench --json --models "$model" --modes "$mode" --batch-size "$batch" "${common[@]}"
      run "torch-nchw-$model-$mode-r$r" "$torch_python" "$repo/bench/torch_reference.py" --models "$model" --modes "$mode" \
        --batch "$batch" "${common[@]}"
      run "torch-cl-$model-$mode-r$r" "$torch_python" "$repo/bench/torch_reference.py" --channels-last --models "$model" \
        --modes "$mode" --batch "$batch" "${common[@]}"
      $table check-params --out "$out"  # fails loudly when pfq's and torch's models differ
    done
  done
done

$table table --out "$out"
