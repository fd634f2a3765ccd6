#!/usr/bin/env python3
"""onnx_check.py — checks pfq's ONNX exports with ONNX's own software (tools/, issue: ONNX export).

For every <name>.onnx in DIR with its <name>.ref.safetensors (written by pfq: "input", pfq's
"logits", for QDQ models also the integer model's "int_logits"):
  * onnx.checker.check_model(full_check=True) (also runs ONNX's shape inference);
  * ONNX Runtime's CPU provider at ORT_DISABLE_ALL and at the default optimisation level;
  * float models: logits within --float-rtol (relative to the largest |logit|) of pfq's;
    QDQ models: top-1 agreement with pfq's fake-quantized model and with its integer model, at
    ORT_DISABLE_ALL (ONNX's reference semantics of the QDQ graph) and at the default level, where
    ONNX Runtime fuses the QDQ pairs into its own kernels that round in their own arithmetic.
    A float QDQ graph sums in another order than pfq, so an activation that lies on a rounding
    tie can land one quantization step away and flip a near-tie between two classes. So a
    disagreement counts only where ONNX Runtime's class is a clear loser in the reference's own
    logits: below the reference's top-1 logit by more than --tie-tol (default 0.02) times the
    reference's largest |logit| over all images. Gated: counted disagreements on at most
    1 - --agree of the images at ORT_DISABLE_ALL (--agree-optimized at the default level;
    default 0.999: on 500 images none), all disagreements, near-ties included, on at most
    1 - --agree-raw (default 0.99), and the median image's largest logit difference from the
    fake-quantized model within --tie-tol of the largest |logit|: tie flips are rare events, so
    a correct export reproduces most images' logits to float rounding, while a wrong scale moves
    every image's logits (a last layer's weights 10% too large: 5% on the median image, with the
    top-1 nearly unchanged). The max logit differences are printed.
--wrong-axis additionally rewrites every per-channel weight DequantizeLinear to axis 1 in one QDQ
model and requires the check to FAIL there (it shows the check would catch the classic bug);
--wrong-scale doubles the scale of the last weight DequantizeLinear (the classifier's) of every QDQ
model (a wrong export that still runs, its top-1 nearly unchanged) and requires the check to FAIL there.
Prints one line per model and ends with "N passed, N failed"; exit status 1 on any failure.
Needs: onnx, onnxruntime, numpy, safetensors (pip).
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
from safetensors.numpy import load_file


def run(model_bytes, x, level, batch=32):
    """The model's logits for x, `batch` images per call: an ImageNet-sized reference (500
    images at 224x224) in one call would need several GB of activations."""
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.log_severity_level = 3
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(["logits"], {"input": x[i:i + batch]})[0] for i in range(0, x.shape[0], batch)])


def agreement(got, ref, tie_tol):
    """(raw top-1 agreement, agreement counting only clear disagreements, number of near-tie flips):
    a disagreement is clear when the class `got` picks scores more than tie_tol * max|ref| below
    the reference's top-1 in the reference's own logits."""
    rows = np.arange(ref.shape[0])
    gap = ref[rows, ref.argmax(1)] - ref[rows, got.argmax(1)]  # 0 where they agree
    tol = tie_tol * max(float(np.abs(ref).max()), 1e-12)
    flips = got.argmax(1) != ref.argmax(1)
    clear = flips & (gap > tol)
    return float(1 - flips.mean()), float(1 - clear.mean()), int((flips & ~clear).sum())


def check_one(model, ref, args, record=None):
    """Returns (ok, text); fills `record` (a dict) with the figures per optimisation level."""
    onnx.checker.check_model(model, full_check=True)
    x = ref["input"].astype(np.float32)
    want = ref["logits"].astype(np.float32)
    qdq = any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    has_int = "int_logits" in ref  # absent when pfq's integer model cannot run this model
    data = model.SerializeToString()
    notes, ok = [], True
    record = {} if record is None else record
    for level, tag in ((ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "ort-noopt"),
                       (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "ort-default")):
        got = run(data, x, level)
        if got.shape != want.shape:
            return False, f"{tag}: logits {got.shape}, pfq {want.shape}"
        scale = max(float(np.abs(want).max()), 1e-12)
        diff = float(np.abs(got - want).max())
        if not qdq:
            good = diff <= args.float_rtol * scale
            notes.append(f"{tag} max|dlogit| {diff:.3g} ({diff / scale:.2g} rel)")
            record[tag] = {"max_dlogit": diff, "rel": diff / scale}
            ok &= good
            continue
        need = args.agree if level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL else args.agree_optimized
        typical = float(np.median(np.abs(got - want).max(1))) / scale
        rec = {"max_dlogit_fq": diff, "median_dlogit_rel_fq": typical}
        text = f"{tag} median image's max|dlogit| {typical:.2g} of the largest logit; top-1 agree"
        good = typical <= args.tie_tol
        for key, r in (("fq", want), ("int", ref["int_logits"] if has_int else None)):
            if r is None:
                text += " (no integer model)"
                continue
            raw, clear, ties = agreement(got, r.astype(np.float32), args.tie_tol)
            rec[f"agree_{key}"], rec[f"agree_{key}_clear"], rec[f"near_ties_{key}"] = raw, clear, ties
            text += f" {key} {raw:.4f} ({ties} near-tie flip{'' if ties == 1 else 's'}; {clear:.4f} beyond the tolerance)"
            good &= clear >= need and raw >= args.agree_raw
        if has_int:
            rec["max_dlogit_int"] = float(np.abs(got - ref["int_logits"]).max())
            text += f", max|dlogit| fq {diff:.3g} int {rec['max_dlogit_int']:.3g}"
        else:
            text += f", max|dlogit| fq {diff:.3g}"
        record[tag] = rec
        notes.append(text)
        ok &= good
    return ok, "; ".join(notes)


def wrong_axis(model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    changed = 0
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and "weight_dequantize" in n.name:
            for a in n.attribute:
                if a.name == "axis":
                    a.i = 1
                    changed += 1
    return m, changed


def wrong_scale(model):
    """A copy of `model` with the last weight DequantizeLinear's scale (the classifier's) doubled,
    and that node's name; (None, "") for a model without one. The logits (less the bias) double,
    the top-1 barely moves: the logit condition is what catches it. (A doubled first layer is
    no test on every fixture: in some untrained ones the first activations all clip or are 0.)"""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {t.name: t for t in m.graph.initializer}
    nodes = [n for n in m.graph.node if n.op_type == "DequantizeLinear" and "weight_dequantize" in n.name
             and n.input[1] in inits]
    if not nodes:
        return None, ""
    t = inits[nodes[-1].input[1]]
    t.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(t) * 2, t.name))
    return m, nodes[-1].name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", type=pathlib.Path)
    ap.add_argument("--agree", type=float, default=0.999)
    ap.add_argument("--agree-optimized", type=float, default=0.999)
    ap.add_argument("--agree-raw", type=float, default=0.99)
    ap.add_argument("--tie-tol", type=float, default=0.02)
    ap.add_argument("--float-rtol", type=float, default=1e-4)
    ap.add_argument("--wrong-axis", action="store_true")
    ap.add_argument("--wrong-scale", action="store_true")
    ap.add_argument("--json", type=pathlib.Path, help="also write the figures per model to this JSON file")
    args = ap.parse_args()
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    passed = failed = 0
    results = []
    models = sorted(args.dir.glob("*.onnx"))
    if not models:
        print(f"no .onnx files in {args.dir}")
        failed += 1
    for path in models:
        ref_path = path.with_suffix(".ref.safetensors")
        model = onnx.load(str(path))
        ref = load_file(str(ref_path))
        record = {}
        try:
            ok, text = check_one(model, ref, args, record)
        except Exception as e:  # checker or runtime refused the model
            ok, text = False, f"{type(e).__name__}: {e}"
        print(f"{'PASS' if ok else 'FAIL'} {path.name} ({path.stat().st_size} bytes): {text}")
        results.append({"model": path.name, "ok": bool(ok), "images": int(ref["input"].shape[0]), "text": text, **record})
        passed += ok
        failed += not ok
    if args.wrong_axis:
        qdq = [p for p in models if "-pc" in p.name]
        if qdq:
            bad, changed = wrong_axis(onnx.load(str(qdq[0])))
            try:
                ok, text = check_one(bad, load_file(str(qdq[0].with_suffix(".ref.safetensors"))), args)
            except Exception as e:
                ok, text = False, f"{type(e).__name__}: {str(e).splitlines()[0]}"
            caught = changed > 0 and not ok
            print(f"{'PASS' if caught else 'FAIL'} wrong axis on {qdq[0].name} ({changed} nodes set to axis 1) "
                  f"{'is caught' if caught else 'was NOT caught'}: {text}")
            passed += caught
            failed += not caught
    if args.wrong_scale:
        for path in models:
            bad, node = wrong_scale(onnx.load(str(path)))
            if bad is None:
                continue
            try:
                ok, text = check_one(bad, load_file(str(path.with_suffix(".ref.safetensors"))), args)
            except Exception as e:
                ok, text = False, f"{type(e).__name__}: {str(e).splitlines()[0]}"
            print(f"{'PASS' if not ok else 'FAIL'} doubled weight scale of {node} in {path.name} "
                  f"{'is caught' if not ok else 'was NOT caught'}: {text}")
            passed += not ok
            failed += ok
    print(f"{passed} passed, {failed} failed")
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps({"onnx": onnx.__version__, "onnxruntime": ort.__version__, "models": results,
                                   "passed": passed, "failed": failed}, indent=2) + "\n")
        tmp.replace(args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
