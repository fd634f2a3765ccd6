#!/usr/bin/env bash
# kill-harness.sh — crash-consistency test of `pfq train`, `pfq finetune` (QAT) and `pfq workflow`:
# runs each once uninterrupted (the reference), then again under a seeded random schedule of
# SIGKILLs (at random times, and every third kill while a checkpoint is being written, found by
# polling for its temp file with PFQ_FAULT_WRITE_DELAY_MS slowing writes down), rerunning the
# same command after each kill (train with --resume continues from its last checkpoint;
# finetune, which has no --resume, starts over; workflow skips the stages marked done). The
# workflow is also killed once inside each of its stages (pretrain, pfq, finetune, intcheck: the
# kill lands after the stage announced itself and before its done.json exists). After every
# kill, every *.safetensors left in the output folder must load (`pfq inspect`); at the end
# every checkpoint must be bit-identical to the reference's (tensors and data bytes; metadata up
# to the output path), and so must the integer model, the ONNX export and results.json (CPU,
# --threads 1, --workers 1). -a picks the model: mobilenetv1 (default) or mobilenetv2, whose
# classifier's dropout draws from its own generator (the checkpoint must carry that state too).
# Ends with "kill-harness: N kills, ok".
# Usage: tools/kill-harness.sh [-p PFQ] [-k KILLS_PER_COMMAND] [-s SEED] [-w WORKDIR]
#                              [-m train|finetune|workflow|both|all] [-a mobilenetv1|mobilenetv2]
#   both = train and workflow; all = train, finetune and workflow. -k 0 with -m workflow runs
#   the per-stage kills only.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pfq=$root/build/apps/pfq
kills_wanted=10
seed=1
work=$(mktemp -d /tmp/pfq-kill-harness.XXXXXX)
mode=both
arch=mobilenetv1
while getopts "p:k:s:w:m:a:" opt; do
  case $opt in
    p) pfq=$OPTARG ;;
    k) kills_wanted=$OPTARG ;;
    s) seed=$OPTARG ;;
    w) work=$OPTARG ;;
    m) mode=$OPTARG ;;
    a) arch=$OPTARG ;;
    *) echo "usage: $0 [-p PFQ] [-k KILLS] [-s SEED] [-w WORKDIR] [-m train|finetune|workflow|both|all] [-a ARCH]" >&2; exit 2 ;;
  esac
done
case $arch in
  mobilenetv1|mobilenetv2) ;;
  *) echo "kill-harness: -a $arch: expected mobilenetv1 or mobilenetv2" >&2; exit 2 ;;
esac
[ -x "$pfq" ] || { echo "kill-harness: $pfq not found (build pfq first or pass -p)" >&2; exit 2; }
mkdir -p "$work"
RANDOM=$seed
total_kills=0
failures=0

# `exec`: run in the background, a function is a subshell; without exec, SIGKILL would hit that
# subshell and leave pfq running as an orphan (which once wrote into the next round's folder).
train_cmd() {  # train_cmd OUT
  exec "$pfq" train --model "$arch" --width 0.25 --dataset fashion-mnist --epochs 3 --batch-size 32 --lr 0.05 \
    --limit-train 384 --limit-test 96 --threads 1 --workers 1 --seed 7 --quiet --resume --out "$1"
}
# A short QAT fine-tune (W4/A4, two epochs: weights-only stage then weights and activations)
# of the float checkpoint that finetune_input writes once.
finetune_cmd() {  # finetune_cmd OUT
  exec "$pfq" finetune "$work/finetune-input/last.safetensors" --wbits 4 --abits 4 --stages w,wa --epochs 2 \
    --calib-batches 2 --batch-size 32 --limit-train 384 --limit-test 96 --threads 1 --workers 1 --seed 7 --quiet --out "$1"
}
finetune_input() {
  [ -f "$work/finetune-input/last.safetensors" ] && return 0
  "$pfq" train --model "$arch" --width 0.25 --dataset fashion-mnist --epochs 1 --batch-size 32 --lr 0.05 \
    --limit-train 384 --limit-test 96 --threads 1 --workers 1 --seed 7 --quiet --out "$work/finetune-input" \
    >"$work/finetune-input.log" 2>&1 || { fail "the float checkpoint to fine-tune: $(tail -n 3 "$work/finetune-input.log")"; return 1; }
}
workflow_cmd() {  # workflow_cmd OUT
  exec "$pfq" workflow --model "$arch" --width 0.25 --dataset fashion-mnist --pretrain-epochs 2 --finetune-epochs 1 \
    --batch-size 32 --limit-train 384 --limit-test 96 --threads 1 --workers 1 --seed 7 --out "$1"
}

fail() { echo "kill-harness: FAIL: $*"; failures=$((failures + 1)); }

# Every visible checkpoint under $1 must load; temp files (".name.tmp.*") are the only debris allowed.
check_checkpoints() {
  local f
  while IFS= read -r -d '' f; do
    if ! "$pfq" inspect "$f" >/dev/null 2>"$work/inspect.err"; then
      fail "unreadable checkpoint after a kill: $f: $(tail -n 1 "$work/inspect.err")"
    fi
  done < <(find "$1" -name '*.safetensors' ! -name '.*' -print0)
}

# run_killed NAME CMD_FUNCTION REF_SECONDS: kills CMD at seeded random points until it has been
# killed $kills_wanted times, then lets it finish.
run_killed() {
  local name=$1 cmd=$2 ref_s=$3 out="$work/$1-killed" kills=0 attempt=0 rc round_start=0
  rm -rf "$out"
  while :; do
    attempt=$((attempt + 1))
    local during_write=0 delay_ms=0
    if [ "$kills" -lt "$kills_wanted" ]; then
      if [ $((kills % 3)) -eq 2 ]; then during_write=1; fi
      delay_ms=$(( (RANDOM * 32768 + RANDOM) % (ref_s * 1000 + 1) ))
    fi
    if [ "$during_write" -eq 1 ]; then
      PFQ_FAULT_WRITE_DELAY_MS=150 "$cmd" "$out" >"$work/$name.log" 2>&1 &
    else
      "$cmd" "$out" >"$work/$name.log" 2>&1 &
    fi
    local pid=$! killed=0 what=""
    if [ "$kills" -lt "$kills_wanted" ]; then
      local waited=0 t0_ns
      t0_ns=$(date +%s%N)
      while kill -0 "$pid" 2>/dev/null; do
        if [ "$during_write" -eq 1 ]; then
          if [ -n "$(find "$out" -name '.*.safetensors.tmp.*' -print -quit 2>/dev/null)" ]; then
            what="during a checkpoint write"
            break
          fi
        elif [ "$waited" -ge "$delay_ms" ]; then
          what="after ${delay_ms} ms"
          break
        fi
        sleep 0.02
        waited=$(( ($(date +%s%N) - t0_ns) / 1000000 ))  # wall clock: a loaded machine stretches sleeps
      done
      if [ -n "$what" ] && kill -KILL "$pid" 2>/dev/null; then
        killed=1
      fi
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    if [ "$killed" -eq 1 ]; then
      kills=$((kills + 1))
      echo "  $name: kill $kills $what (run $attempt)"
      check_checkpoints "$out"
      continue
    fi
    if [ "$rc" -ne 0 ]; then
      fail "$name run $attempt exited with status $rc: $(tail -n 3 "$work/$name.log")"
      return
    fi
    # finished: the same checkpoints as the reference, bit for bit; then, while kills remain,
    # another round from scratch
    compare_with_reference "$name" "$out" "$((kills - round_start))"
    round_start=$kills
    if [ "$kills" -ge "$kills_wanted" ]; then break; fi
    rm -rf "$out"
  done
  total_kills=$((total_kills + kills))
}

# same_checkpoint A DIR_A B DIR_B: the tensors (header entries and data bytes) are identical and
# so is the metadata once each run's output folder is replaced by "<out>" (the train state
# records the --out path).
same_checkpoint() {
  python3 - "$@" <<'PY'
import json, struct, sys
def load(path, out):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = {k: v.replace(out, "<out>") for k, v in h.pop("__metadata__", {}).items()}
    return h, meta, b[8 + n:]
a, b = load(sys.argv[1], sys.argv[2]), load(sys.argv[3], sys.argv[4])
for what, x, y in zip(("tensor headers", "metadata", "tensor data"), a, b):
    if x != y:
        print(f"kill-harness: {sys.argv[3]}: {what} differ", file=sys.stderr)
        sys.exit(1)
PY
}

compare_with_reference() {  # compare_with_reference NAME OUT KILLS_THIS_ROUND
  local ref="$work/$1-ref" out=$2 f rel n=0 bad=0
  while IFS= read -r -d '' f; do
    rel=${f#"$ref"/}
    n=$((n + 1))
    if [ ! -f "$out/$rel" ]; then
      fail "$1: $rel missing after the killed run"; bad=1
    elif ! same_checkpoint "$f" "$ref" "$out/$rel" "$out"; then
      fail "$1: $rel differs from the uninterrupted run's"; bad=1
    fi
  done < <(find "$ref" -name '*.safetensors' ! -name '.*' -print0)
  [ "$n" -gt 0 ] || { fail "$1: the reference run wrote no checkpoint"; bad=1; }
  # the workflow's other results: the integer model and ONNX export byte for byte, results.json
  # up to the output folder (it names the files it wrote)
  while IFS= read -r -d '' f; do
    rel=${f#"$ref"/}
    n=$((n + 1))
    if [ ! -f "$out/$rel" ]; then
      fail "$1: $rel missing after the killed run"; bad=1
    elif [ "${rel##*/}" = results.json ]; then
      if [ "$(sed "s|$ref|<out>|g" "$f")" != "$(sed "s|$out|<out>|g" "$out/$rel")" ]; then
        fail "$1: $rel differs from the uninterrupted run's"; bad=1
      fi
    elif ! cmp -s "$f" "$out/$rel"; then
      fail "$1: $rel differs from the uninterrupted run's"; bad=1
    fi
  done < <(find "$ref" \( -name '*.pfqint' -o -name '*.onnx' -o -name results.json \) ! -name '.*' -print0)
  echo "  $1: run finished after $3 kills: $n checkpoints and results $([ "$bad" -eq 0 ] && echo "identical to the uninterrupted run" || echo DIFFER)"
}

# stage_kills REF_SECONDS: `pfq workflow` killed once inside each stage, in order: the command
# starts (writes slowed by PFQ_FAULT_WRITE_DELAY_MS so that short stages such as pfq last long
# enough to be hit), the log announces "workflow: stage S (" (a stage already done says
# "already done" instead), the kill follows after a seeded random delay; it counts for S when
# S's done.json does not exist after it, else S is tried again (at most 5 times). Then the run
# finishes and is compared with the reference.
stage_kills() {
  local out="$work/workflow-stages-killed" s tries pid rc hit
  rm -rf "$out"
  for s in pretrain pfq finetune intcheck; do
    hit=0
    for tries in 1 2 3 4 5; do
      : >"$work/workflow-stages.log"
      PFQ_FAULT_WRITE_DELAY_MS=100 workflow_cmd "$out" >"$work/workflow-stages.log" 2>&1 &
      pid=$!
      while kill -0 "$pid" 2>/dev/null && ! grep -q "^workflow: stage $s (" "$work/workflow-stages.log"; do sleep 0.01; done
      sleep "0.$(printf '%03d' $((RANDOM % 400)))"
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      rc=$?
      if [ "$rc" -ne 137 ]; then
        fail "workflow (stage kills): the run for stage $s ended with status $rc before the kill: $(tail -n 3 "$work/workflow-stages.log")"
        return
      fi
      total_kills=$((total_kills + 1))
      check_checkpoints "$out"
      if [ ! -f "$out/$s/done.json" ]; then
        echo "  workflow: killed inside stage $s (try $tries)"
        hit=1
        break
      fi
      echo "  workflow: stage $s finished before the kill (try $tries); again"
    done
    [ "$hit" -eq 1 ] || { fail "workflow (stage kills): no kill landed inside stage $s in 5 tries"; return; }
  done
  if ! (workflow_cmd "$out") >"$work/workflow-stages.log" 2>&1; then
    fail "workflow (stage kills): the final run failed: $(tail -n 3 "$work/workflow-stages.log")"
    return
  fi
  compare_with_reference workflow "$out" 4
}

run_one() {  # run_one NAME CMD_FUNCTION
  local name=$1 cmd=$2 start
  rm -rf "$work/$name-ref"
  start=$(date +%s%N)
  if ! ("$cmd" "$work/$name-ref") >"$work/$name-ref.log" 2>&1; then  # a subshell: the command execs
    fail "$name reference run failed: $(tail -n 3 "$work/$name-ref.log")"
    return 1
  fi
  local ref_s=$(( ($(date +%s%N) - start) / 1000000000 + 1 ))
  echo "== $name ($arch): reference run ${ref_s}s; $kills_wanted kills (seed $seed)"
  [ "$kills_wanted" -gt 0 ] && run_killed "$name" "$cmd" "$ref_s"
  return 0
}

run_workflow() { run_one workflow workflow_cmd && [ -d "$work/workflow-ref" ] && stage_kills; }
run_finetune() { finetune_input && run_one finetune finetune_cmd; }
case $mode in
  train) run_one train train_cmd ;;
  finetune) run_finetune ;;
  workflow) run_workflow ;;
  both) run_one train train_cmd; run_workflow ;;
  all) run_one train train_cmd; run_finetune; run_workflow ;;
  *) echo "kill-harness: unknown mode $mode" >&2; exit 2 ;;
esac

if [ "$failures" -eq 0 ]; then
  echo "kill-harness: $total_kills kills, ok (work dir $work)"
  exit 0
fi
echo "kill-harness: $total_kills kills, $failures failures (work dir $work)"
exit 1
