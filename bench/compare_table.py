#!/usr/bin/python3
"""compare_table.py — the bookkeeping of bench/compare.sh (run with /usr/bin/python3, which has
torch): `settings` records the run's settings and environment (pfq commit, PyTorch version and
origin, BLAS, OPENBLAS_CORETYPE, CPU) in OUT/settings.json; `check-params` fails loudly when
pfq's and PyTorch's models of the same name differ in parameter count; `table` reads the
per-process JSON documents in OUT/raw/ (pfq-*, torch-nchw-*, torch-cl-*), prints the ratio
table of issue #7 with the targets met or missed, and writes OUT/compare.json and compare.md.
Per framework, model and mode the step time is the median over rounds of each process's median
step, the peak RSS the median over rounds of each process's peak.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import statistics
import subprocess
import sys

# Issue #7's targets: pfq step / best PyTorch layout's step; qat step / pfq float train step;
# peak memory of a training step (inference memory is reported, not a target).
# Issue #29 adds ResNet-18 at 224x224: <= 0.9 for both the training step and inference.
TRAIN_TARGETS = {"resnet20": 1.0, "mobilenetv1": 0.8, "mobilenetv2": 0.8, "resnet18": 0.9}
INFER_TARGET = 1.0
INFER_TARGETS = {"resnet18": 0.9}
QAT_TARGET = 1.15
MEMORY_TARGET = 1.0
FRAMEWORKS = ("pfq", "torch-nchw", "torch-cl")


def command_output(args, cwd=None):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True, cwd=cwd).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def cmd_settings(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    from torch_reference import blas_library, torch_origin

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirty = command_output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo)
    settings = {
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "models": args.models, "modes": args.modes, "threads": args.threads, "batch": args.batch,
        "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup, "size": args.size, "classes": args.classes,
        "pfq": {"binary": os.path.abspath(args.pfq), "commit": command_output(["git", "rev-parse", "HEAD"], cwd=repo),
                "modified_tracked_files": len(dirty.splitlines()) if dirty is not None else None},
        "torch": {"version": torch.__version__, **torch_origin(), "blas": blas_library()},
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS")},
        "machine": {"host": platform.node(), "cpu": cpu_model(), "cores": os.cpu_count(), "load_average": os.getloadavg()},
    }
    with open(os.path.join(args.out, "settings.json"), "w") as f:
        json.dump(settings, f, indent=2)
        f.write("\n")


def load_raw(out):
    """{(framework, model, mode): [result row of each round, in round order]}."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(out, "raw", "*.json"))):
        name = os.path.basename(path)
        framework = next((fw for fw in FRAMEWORKS if name.startswith(fw + "-")), None)
        if framework is None:
            continue
        with open(path) as f:
            doc = json.load(f)
        # a pfq qat process runs train too, for the interleaved qat / train pairs: keep its qat row
        qat_process = name.endswith(".json") and "-qat-" in name
        for r in doc["results"]:
            if qat_process and r["mode"] != "qat":
                continue
            runs.setdefault((framework, r["model"], r["mode"]), []).append(r)
    return runs


def cmd_check_params(args):
    params = {}
    for (framework, model, _), rows in load_raw(args.out).items():
        for r in rows:
            params.setdefault(model, {}).setdefault(framework.split("-")[0], set()).add(r["params"])
    bad = []
    for model, by in sorted(params.items()):
        counts = by.get("pfq", set()) | by.get("torch", set())
        if len(counts) > 1:
            bad.append(f"  {model}: pfq {sorted(by.get('pfq', []))}, torch {sorted(by.get('torch', []))}")
    if bad:
        sys.exit("compare_table.py: PARAMETER COUNTS DIFFER between pfq's and PyTorch's models, so the comparison would be "
                 "meaningless:\n" + "\n".join(bad) + "\nfix bench/torch_reference.py or tools/torch_pfq_models.py first")


def aggregate(rows):
    if not rows:
        return None
    return {"median_ms": statistics.median(r["median_ms"] for r in rows),
            "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in rows),
            "rss_before_model_mib": statistics.median(r.get("rss_before_model_mib", 0.0) for r in rows),
            "rounds_median_ms": [r["median_ms"] for r in rows],
            "rounds_peak_rss_mib": [r["peak_rss_mib"] for r in rows],
            "params": rows[0]["params"]}


def verdict(value, target):
    if value is None or target is None:
        return None
    return value <= target


def build_rows(settings, runs):
    rows = []
    for model in settings["models"]:
        for mode in settings["modes"]:
            agg = {fw: aggregate(runs.get((fw, model, mode), [])) for fw in FRAMEWORKS}
            pfq, nchw, cl = agg["pfq"], agg["torch-nchw"], agg["torch-cl"]
            row = {"model": model, "mode": mode, **{fw: agg[fw] for fw in FRAMEWORKS}}
            if mode == "qat":
                # the median over rounds of each round's interleaved pairs (pfq bench --modes train qat:
                # both steps alternating in one process), else the separate processes' medians
                paired = [r["qat_over_float_train_paired"]["median_ratio"] for r in runs.get(("pfq", model, "qat"), [])
                          if "qat_over_float_train_paired" in r]
                train = aggregate(runs.get(("pfq", model, "train"), []))
                row["ratio_of"] = "qat / float train (pfq)"
                if paired:
                    row["ratio"] = statistics.median(paired)
                    row["rounds_ratio"] = paired
                    stats = {r["qat"]["config"].get("bn_stats", "float") for r in runs.get(("pfq", model, "qat"), [])}
                    row["note"] = ("interleaved in one process (median of the rounds' pair medians); folded BN statistics: "
                                   + ", ".join(sorted(stats)))
                else:
                    row["ratio"] = pfq["median_ms"] / train["median_ms"] if pfq and train else None
                    row["note"] = None if train else "qat / float needs --modes train too"
                row["target"] = QAT_TARGET
            else:
                torch_layouts = [(n, a) for n, a in (("nchw", nchw), ("channels-last", cl)) if a]
                best = min(torch_layouts, key=lambda t: t[1]["median_ms"]) if torch_layouts else None
                row["best_torch_layout"] = best[0] if best else None
                row["ratio_of"] = "pfq / best torch layout"
                row["ratio"] = pfq["median_ms"] / best[1]["median_ms"] if pfq and best else None
                row["target"] = TRAIN_TARGETS.get(model) if mode == "train" else INFER_TARGETS.get(model, INFER_TARGET)
                smallest = min((a["peak_rss_mib"] for _, a in torch_layouts), default=None)
                row["memory_ratio"] = pfq["peak_rss_mib"] / smallest if pfq and smallest else None
                if mode == "train":
                    row["memory_target"] = MEMORY_TARGET
                    row["memory_met"] = verdict(row["memory_ratio"], MEMORY_TARGET)
                # What the model's steps added (the libraries' resident memory, ~250 MiB for torch, left out).
                above = {fw: a["peak_rss_mib"] - a["rss_before_model_mib"] for fw, a in agg.items() if a}
                torch_above = [above[fw] for fw in ("torch-nchw", "torch-cl") if fw in above]
                row["memory_above_start_mib"] = above
                row["memory_above_start_ratio"] = above["pfq"] / min(torch_above) if "pfq" in above and torch_above and min(
                    torch_above) > 0 else None
            row["met"] = verdict(row["ratio"], row["target"])
            rows.append(row)
    return rows


def fmt_ms(a):
    if a is None:
        return "-"
    v = a["median_ms"]
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def met_word(m):
    return "-" if m is None else ("met" if m else "MISSED")


def markdown(settings, rows):
    s, t = settings, settings["torch"]
    lines = [
        f"pfq bench vs PyTorch {t['version']} ({t['source']} {t['package']} {t['package_version']}, BLAS {t['blas']}), "
        f"{s['threads']} threads, batch {s['batch']}, {s.get('size', 32)}x{s.get('size', 32)} inputs, "
        f"{s.get('classes', 100)} classes, rounds {s['rounds']} x {s['steps']} steps after {s['warmup']} warm-up, "
        f"OPENBLAS_CORETYPE={s['env']['OPENBLAS_CORETYPE'] or '(unset)'}, CPU {s['machine']['cpu']}, "
        f"pfq {str(s['pfq']['commit'])[:10]} ({s['pfq']['modified_tracked_files']} modified files), {s['created']}.",
        "",
        "Step: median over rounds of each process's median step; one process per framework, model, mode and round. "
        "ratio: pfq / the faster PyTorch layout (qat: pfq's QAT step / pfq's float train step). "
        "mem ratio: pfq's peak RSS / the smaller PyTorch peak (a target for training steps only).",
        "",
    ]
    header = ["model", "mode", "pfq ms", "torch NCHW ms", "torch CL ms", "ratio", "target", "speed",
              "pfq MiB", "NCHW MiB", "CL MiB", "mem ratio", "memory"]
    table = [header]
    for r in rows:
        target = "-" if r["target"] is None else f"<= {r['target']}" + (" x float" if r["mode"] == "qat" else "")
        mem_target = "memory_target" in r
        table.append([
            r["model"], r["mode"], fmt_ms(r["pfq"]), fmt_ms(r["torch-nchw"]), fmt_ms(r["torch-cl"]),
            fmt(r["ratio"], ".2f"), target, met_word(r["met"]),
            *(fmt(r[fw]["peak_rss_mib"] if r[fw] else None, ".0f") for fw in FRAMEWORKS),
            fmt(r.get("memory_ratio"), ".2f"), met_word(r.get("memory_met")) if mem_target else "-",
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    as_line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    lines.append(as_line(header))
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [as_line(row) for row in table[1:]]
    verdicts = [r["met"] for r in rows] + [r.get("memory_met") for r in rows]
    met, missed = sum(v is True for v in verdicts), sum(v is False for v in verdicts)
    lines += ["", f"targets: {met} met, {missed} missed"]
    lines += [f"note: {r['model']} {r['mode']}: {r['note']}" for r in rows if r.get("note")]
    lines += ["", "Peak RSS above the RSS before the model was built (what the steps add; libraries left out), MiB:", ""]
    for r in rows:
        above = r.get("memory_above_start_mib")
        if above:
            parts = ", ".join(f"{fw} {v:.0f}" for fw, v in above.items())
            lines.append(f"- {r['model']} {r['mode']}: {parts}; pfq / smaller torch {fmt(r['memory_above_start_ratio'], '.2f')}")
    return "\n".join(lines) + "\n"


def cmd_table(args):
    with open(os.path.join(args.out, "settings.json")) as f:
        settings = json.load(f)
    runs = load_raw(args.out)
    if not runs:
        sys.exit(f"compare_table.py: no results in {args.out}/raw")
    cmd_check_params(args)
    rows = build_rows(settings, runs)
    md = markdown(settings, rows)
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump({"settings": settings, "targets": {"train": TRAIN_TARGETS, "infer": INFER_TARGET, "qat_over_float_train": QAT_TARGET,
                                                     "infer_by_model": INFER_TARGETS, "memory_ratio": MEMORY_TARGET}, "rows": rows}, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write(md)
    print(md, end="")
    print(f"written: {args.out}/compare.json, {args.out}/compare.md", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    st = sub.add_parser("settings", help="write OUT/settings.json")
    st.add_argument("--out", required=True)
    st.add_argument("--pfq", required=True)
    st.add_argument("--models", nargs="+", required=True)
    st.add_argument("--modes", nargs="+", required=True)
    for name in ("threads", "batch", "rounds", "steps", "warmup"):
        st.add_argument(f"--{name}", type=int, required=True)
    st.add_argument("--size", type=int, default=32)
    st.add_argument("--classes", type=int, default=100)
    for name in ("check-params", "table"):
        sub.add_parser(name).add_argument("--out", required=True)
    args = ap.parse_args()
    {"settings": cmd_settings, "check-params": cmd_check_params, "table": cmd_table}[args.command](args)


if __name__ == "__main__":
    main()
