#!/usr/bin/env python3
"""list-claims.py — lists every measured number in README.md and docs/*.md with what dates it:
the command that produced it (inline code that runs something: pfq, build/..., tools/...,
python3, time), the day (YYYY-MM-DD) and the commit (a hash git knows) named in the same block.
A block is a paragraph, a list item or a table row; the headings above it (and, for a table
row, the paragraph just above the table: its caption) date it too. A measured number is a
percentage, a time (s, ms, min, h), a rate (GFLOP/s, images/s, img/s, it/s), a size (KiB, MiB,
GiB, KB, MB, GB) or a ratio (1.6x, no space: "3 x 224" is a shape); limits and settings in
these units count too, so a flagged block may hold no measurement. Blocks with such numbers but
neither a day nor a commit are flagged UNDATED, so that stale ones are visible; a block can say
where its date is with "(dated: <where>)". Each block also shows the commit and day its text
last changed (git blame): a number older than the code it describes is stale.
Usage: tools/list-claims.py [--undated] [--summary] [FILE...]   (run from anywhere in the repository)
Exit status 0; the last line says how many blocks hold numbers and how many are undated.
"""
import argparse
import datetime
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NUMBER = re.compile(
    r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?\s?"
    r"(?:%|ms\b|s\b|min\b|h\b|GFLOP/s|TFLOP/s|images/s|img/s|it/s|KiB\b|MiB\b|GiB\b|KB\b|MB\b|GB\b)"
    r"|(?<![\w.])\d+(?:\.\d+)?x\b")  # a ratio is written 1.6x; "3 x 224" is a shape
DAY = re.compile(r"\b20\d\d-\d\d-\d\d\b")
HASH = re.compile(r"(?<![\w/.-])[0-9a-f]{7,40}(?![\w/.-])")
CODE = re.compile(r"`([^`]+)`")
RUNS = re.compile(r"^(?:/usr/bin/time\b|time\b|OMP_NUM_THREADS=\S+\s+)*\s*(?:pfq\b|build[\w-]*/|tools/|python3?\b|\./|\.ci/|mpirun\b|nsys\b|ncu\b)")


def known_commits(candidates):
    """The candidates git resolves to a commit (one git call for all)."""
    cands = sorted(set(candidates))
    if not cands:
        return set()
    out = subprocess.run(["git", "-C", ROOT, "cat-file", "--batch-check"], input="\n".join(c + "^{commit}" for c in cands) + "\n",
                         capture_output=True, text=True).stdout.splitlines()
    return {c for c, line in zip(cands, out) if not line.endswith("missing") and " commit " in line}


def last_written(path, first, last):
    """(commit, day) of the newest commit that touched lines first..last of path (git blame)."""
    r = subprocess.run(["git", "-C", ROOT, "blame", "--porcelain", "-L", f"{first},{last}", "--", os.path.relpath(path, ROOT)],
                       capture_output=True, text=True)
    best = ("", 0)
    commit = ""
    for line in r.stdout.splitlines():
        m = re.match(r"^([0-9a-f]{40}) \d+ \d+", line)
        if m:
            commit = m.group(1)
        elif line.startswith("committer-time "):
            t = int(line.split()[1])
            if t > best[1]:
                best = (commit, t)
    if not best[0] or best[0] == "0" * 40:
        return "uncommitted", ""
    return best[0][:7], datetime.datetime.fromtimestamp(best[1], datetime.timezone.utc).strftime("%Y-%m-%d")


def blocks(lines):
    """(first line number, text, context) of each block. The context, which dates the block
    too, is the headings above it (section and parents) and, for a table row, the table's
    caption (the paragraph just above the table)."""
    out, cur, start, in_code = [], [], 0, False
    headings = {}  # level -> heading text
    caption = ""   # the last paragraph, for a table after it

    def context():
        return "\n".join(headings[k] for k in sorted(headings))

    def flush():
        nonlocal cur, caption
        if cur:
            text = "\n".join(cur)
            if text.lstrip().startswith("|"):
                for k, row in enumerate(cur):  # one block per row; the caption dates them all
                    out.append((start + k, row, context() + "\n" + caption))
            else:
                out.append((start, text, context()))
                caption = text
        cur = []

    for i, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            flush()
            if stripped.startswith("#"):
                level = len(stripped) - len(stripped.lstrip("#"))
                headings = {k: v for k, v in headings.items() if k < level}
                headings[level] = stripped
                caption = ""
            continue
        is_item = re.match(r"^\s*(?:[-*]|\d+\.)\s", line) is not None and not line.startswith("  ")
        if cur and (is_item or (stripped.startswith("|") != cur[0].lstrip().startswith("|"))):
            flush()
        if not cur:
            start = i
        cur.append(line)
    flush()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--undated", action="store_true", help="list only the undated blocks")
    ap.add_argument("--summary", action="store_true", help="only the count per file")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = a.files or [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    found = []  # (file, line, numbers, commands, days, hashes)
    all_hashes = []
    for f in files:
        try:
            lines = open(f, encoding="utf-8").read().splitlines()
        except OSError as e:
            sys.exit(f"list-claims: cannot read {f}: {e.strerror}")
        for start, text, ctx in blocks(lines):
            nums = [m.group(0).strip() for m in NUMBER.finditer(CODE.sub(" ", text))]
            if not nums:
                continue
            cmds = [c for c in CODE.findall(text + "\n" + ctx) if RUNS.match(c)]
            hashes = HASH.findall(text + "\n" + ctx)
            all_hashes += hashes
            found.append((os.path.relpath(f, ROOT), start, nums, cmds, DAY.findall(text + "\n" + ctx), hashes,
                          "(dated:" in text, f, start + text.count("\n")))
    commits = known_commits(all_hashes)
    undated = 0
    per_file = {}
    for f, line, nums, cmds, days, hashes, pointer, path, end in found:
        hashes = [h for h in hashes if h in commits]
        dated = bool(days or hashes or pointer)
        undated += not dated
        n, u = per_file.get(f, (0, 0))
        per_file[f] = (n + 1, u + (not dated))
        if a.summary or (a.undated and dated):
            continue
        shown = ", ".join(nums[:8]) + (f", ... ({len(nums)} in all)" if len(nums) > 8 else "")
        written, when = last_written(path, line, end)
        print(f"{f}:{line}: {'UNDATED ' if not dated else ''}numbers: {shown}")
        print(f"    day: {', '.join(sorted(set(days))) or '-'}; commit: {', '.join(sorted(set(hashes))) or '-'}; "
              f"command: {' | '.join(cmds[:3]) or '-'}; text last changed: {written} {when}")
    if a.summary:
        for f, (n, u) in per_file.items():
            print(f"{f}: {n} blocks with numbers, {u} undated")
    print(f"list-claims: {len(found)} blocks with measured numbers in {len(files)} files, {undated} undated")


if __name__ == "__main__":
    main()
