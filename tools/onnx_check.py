#!/usr/bin/env python3
"""onnx_check.py — checks pfq's ONNX exports with ONNX's own software (tools/, issue: ONNX export).

For every <name>.onnx in DIR with its <name>.ref.safetensors (written by pfq: "input", pfq's
"logits", for QDQ models also the integer model's "int_logits"):
  * onnx.checker.check_model(full_check=True) (also runs ONNX's shape inference);
  * ONNX Runtime's CPU provider at ORT_DISABLE_ALL and at the default optimisation level;
  * float models: logits within --float-rtol (relative to the largest |logit|) of pfq's;
    QDQ models: top-1 agreement with pfq's fake-quantized model and with its integer model
    >= --agree at ORT_DISABLE_ALL (ONNX's reference semantics of the QDQ graph) and >= --agree-optimized
    at the default level, where ONNX Runtime fuses the QDQ pairs into its own integer kernels that
    requantize in their own arithmetic; the max logit differences are printed.
--wrong-axis additionally rewrites every per-channel weight DequantizeLinear to axis 1 in one QDQ
model and requires the check to FAIL there (it shows the check would catch the classic bug).
Prints one line per model and ends with "N passed, N failed"; exit status 1 on any failure.
Needs: onnx, onnxruntime, numpy, safetensors (pip).
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file


def run(model_bytes, x, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.log_severity_level = 3
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"input": x})[0]


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
        agree = float((got.argmax(1) == want.argmax(1)).mean())
        rec = {"agree_fq": agree, "max_dlogit_fq": diff}
        text = f"{tag} top-1 agree fq {agree:.4f}"
        good = agree >= need
        if has_int:
            rec["agree_int"] = float((got.argmax(1) == ref["int_logits"].argmax(1)).mean())
            rec["max_dlogit_int"] = float(np.abs(got - ref["int_logits"]).max())
            text += f" int {rec['agree_int']:.4f}, max|dlogit| fq {diff:.3g} int {rec['max_dlogit_int']:.3g}"
            good &= rec["agree_int"] >= need
        else:
            text += f" (no integer model), max|dlogit| fq {diff:.3g}"
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", type=pathlib.Path)
    ap.add_argument("--agree", type=float, default=0.999)
    ap.add_argument("--agree-optimized", type=float, default=0.999)
    ap.add_argument("--float-rtol", type=float, default=1e-4)
    ap.add_argument("--wrong-axis", action="store_true")
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
    print(f"{passed} passed, {failed} failed")
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps({"onnx": onnx.__version__, "onnxruntime": ort.__version__, "models": results,
                                   "passed": passed, "failed": failed}, indent=2) + "\n")
        tmp.replace(args.json)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
