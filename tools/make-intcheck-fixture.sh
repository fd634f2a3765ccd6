#!/usr/bin/env bash
# make-intcheck-fixture.sh — writes tests/fixtures/intcheck_mobilenetv1_w0.125_w4a4.safetensors,
# the trained QAT checkpoint the integer-check e2e case exports and checks (>= 99.5% agreement
# between the integer and the fake-quantized model, docs/integer-format.md 6): MobileNetV1
# width 0.125 trained 3 epochs on 4096 Fashion-MNIST images (75.4% top-1 on the first 1000 test
# images), then one W4/A4 QAT epoch (69.4%). CPU, one thread: the same binary writes the same
# bytes (the metadata records the work folder, fixed below).
# Usage: tools/make-intcheck-fixture.sh [PFQ]   (default build-cpu/apps/pfq; needs dataset-fashion-mnist)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pfq=${1:-$root/build-cpu/apps/pfq}
work=/tmp/pfq-intcheck-fixture
rm -rf "$work"
data=(--dataset fashion-mnist --batch-size 64 --limit-train 4096 --limit-test 1000 --threads 1 --workers 1 --seed 5 --quiet)
"$pfq" train --model mobilenetv1 --width 0.125 --epochs 3 --lr 0.1 "${data[@]}" --out "$work/float"
"$pfq" finetune "$work/float/best.safetensors" --wbits 4 --abits 4 --epochs 1 --lr 0.01 "${data[@]}" --out "$work/qat"
cp "$work/qat/last.safetensors" "$root/tests/fixtures/intcheck_mobilenetv1_w0.125_w4a4.safetensors"
tail -n 1 "$work/float/metrics.csv" "$work/qat/metrics.csv"
