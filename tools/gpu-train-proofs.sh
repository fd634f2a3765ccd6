#!/usr/bin/env bash
# gpu-train-proofs.sh — the real-data proofs of training, PfQ and QAT, run on a GPU because a
# 2-core CPU needs hours for them: ResNet-20 and MobileNetV1 (CIFAR variant, width 0.5) trained
# on Fashion-MNIST for 10 epochs with `pfq train`'s default recipe; then from that MobileNetV1:
# `pfq prune` (PfQ) and QAT at 8/8 and 4/4 bits with every quantizer, without and with PfQ. Runs share the GPU
# concurrently; each is time-boxed. Results (metrics, reports, checkpoints) land in $OUT.
#   PFQ=build-gpu/apps/pfq FMNIST_DIR=third_party/fashion-mnist OUT=proofs tools/gpu-train-proofs.sh
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pfq=${PFQ:-$root/build-gpu/apps/pfq}
data=${FMNIST_DIR:-$root/third_party/fashion-mnist}
[ -f "$data/train-images-idx3-ubyte.gz" ] || data=/usr/share/datasets/fashion-mnist
OUT=${OUT:-$root/proofs-out}
dev=${PROOF_DEVICE:-cuda}
train_s=${PROOF_TRAIN_S:-240}
qat_s=${PROOF_QAT_S:-150}
qat_epochs=${PROOF_QAT_EPOCHS:-3}
mkdir -p "$OUT"
run() {  # NAME SECONDS CMD... — time-boxed, output in $OUT/NAME.log, verdict in $OUT/summary.txt
  local name=$1 secs=$2; shift 2
  local t0=$(date +%s)
  timeout -k 5 "$secs" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc $(( $(date +%s) - t0 ))s" | tee -a "$OUT/summary.txt"
}
common=(--device "$dev" --data-dir "$data" --threads 2 --quiet)
run train-resnet20 "$train_s" "$pfq" train --model resnet20 --epochs 10 "${common[@]}" --out "$OUT/resnet20" &
run train-mnv1 "$train_s" "$pfq" train --model mobilenetv1 --width 0.5 --epochs 10 "${common[@]}" --out "$OUT/mnv1"
wait
ck="$OUT/mnv1/last.safetensors"
[ -f "$ck" ] || { echo "no MobileNetV1 checkpoint; stopping" | tee -a "$OUT/summary.txt"; exit 1; }
run prune-mnv1 90 "$pfq" prune "$ck" --method pfq --data-dir "$data" --out "$OUT/mnv1-pfq.safetensors"
# QAT from the trained model without and with PfQ: 8/8 minmax, and 4/4 with every quantizer.
ft() {  # SOURCE NAME ARGS...
  local src=$1 name=$2; shift 2
  local from=$ck
  [ "$src" = mnv1-pfq ] && from="$OUT/mnv1-pfq.safetensors"
  run "qat-$src-$name" "$qat_s" "$pfq" finetune "$from" --epochs "$qat_epochs" --device "$dev" --data-dir "$data" \
      --threads 1 --workers 1 --quiet --out "$OUT/qat-$src-$name" "$@"
}
for src in mnv1 mnv1-pfq; do
  ft $src w8a8-minmax --wbits 8 --abits 8 &
  ft $src w4a4-minmax --wbits 4 --abits 4 &
  ft $src w4a4-perchannel --wbits 4 --abits 4 --per-channel &
  ft $src w4a4-pact --wbits 4 --abits 4 --aquant pact &
  ft $src w4a4-lsq --wbits 4 --abits 4 --wquant lsq --aquant lsq &
  ft $src w4a4-dorefa --wbits 4 --abits 4 --wquant dorefa &
done
wait
python3 - "$OUT" <<'PY' | tee -a "$OUT/summary.txt"
import glob, json, os, sys
out = sys.argv[1]
for f in sorted(glob.glob(os.path.join(out, "*", "metrics.jsonl"))):
    rows = [json.loads(l) for l in open(f) if l.strip()]
    if rows:
        r = rows[-1]
        print(f"{os.path.basename(os.path.dirname(f)):22s} epochs {r.get('epoch')}  test top-1 {r.get('test_top1', float('nan')):.2f}"
              f"  best {max(x.get('test_top1', 0) for x in rows):.2f}")
PY
