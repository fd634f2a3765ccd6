#!/usr/bin/env python3
"""list-claims.py — lists every measured number in README.md and docs/*.md with what dates it:
the command that produced it (inline code that runs something: pfq, build/..., tools/...,
python3, time), the day (YYYY-MM-DD) and the commit (a hash git knows) named in the same block.
A block is a paragraph, a list item or a table row; the headings above it (and, for a table
row, the paragraph just above the table: its caption) date it too. A measured number is a
percentage, a time (s, ms, min, h), a rate (GFLOP/s, images/s, img/s, it/s), a size (KiB, MiB,
GiB, KB, MB, GB) or a ratio (1.6x, no space: "3 x 224" is a shape). A number written as a
limit or setting is not a measurement and is skipped: right after a comparison (<=, >=, <, >),
"default", "past" or "at most", or within the few words after "limit"/"limits", "budget of",
"steps of" or "tolerance" in the same clause (e.g. "> 2 GB RSS", "default 450 s", "limits 2^20 pixels / 1 MiB");
`--self-test` checks that such settings are skipped and measurements next to them are not.
Blocks with measured numbers but
neither a day nor a commit are flagged UNDATED, so that stale ones are visible; a block can say
where its date is with "(dated: <where>)". Each block also shows the commit and day its text
last changed (git blame): a number older than the code it describes is stale.
Usage: tools/list-claims.py [--undated] [--summary] [--self-test] [FILE...]   (run from anywhere in the repository)
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
# A setting: the number follows a comparison or one of these words directly, or a "limit"-like word
# earlier in its clause (no sentence or clause break, at most 30 characters before it).
SETTING_RIGHT_BEFORE = re.compile(r"(?:<=|>=|<|(?<![-=])>|\bdefault|\bpast|\bat most)\s*$")
SETTING_IN_CLAUSE = re.compile(r"(?:\blimits?\b|\bbudget of\b|\bsteps of\b|\btolerance\b)[^.;:()]*$")
DAY = re.compile(r"\b20\d\d-\d\d-\d\d\b")
HASH = re.compile(r"(?<![\w/.-])[0-9a-f]{7,40}(?![\w/.-])")
CODE = re.compile(r"`([^`]+)`")
RUNS = re.compile(r"^(?:/usr/bin/time\b|time\b|OMP_NUM_THREADS=\S+\s+)*\s*(?:pfq\b|build[\w-]*/|tools/|python3?\b|\./|\.ci/|mpirun\b|nsys\b|ncu\b)")


def is_setting(text, start):
    """Whether the number at text[start:] is written as a limit or setting, not a measurement."""
    before = text[max(0, start - 30):start]
    return bool(SETTING_RIGHT_BEFORE.search(before) or SETTING_IN_CLAUSE.search(before))


def measured_numbers(text):
    """The measured numbers of a block's text (inline code and settings left out)."""
    plain = CODE.sub(lambda m: " " * len(m.group(0)), text)
    return [m.group(0).strip() for m in NUMBER.finditer(plain) if not is_setting(plain, m.start())]


SELF_TEST = [  # (text, measured numbers expected)
    ("anything else (a crash, > 10 s, > 2 GB RSS, a single allocation > 1 GB) is a finding", []),
    ("the file, limits 2^20 pixels / 1 MiB", []),
    ("one deadline (`GPU_CHECK_BUDGET_S`, default 450 s)", []),
    ("header length past the file / past 100 MB, invalid JSON", []),
    ("flat buckets of at most 16 MB, so every rank", []),
    ("CI gives each target a budget of 20 s (it was 30 s until session 10)", ["30 s"]),
    ("the buffer then grows in steps of 16 MiB as data arrives", []),
    ("file size <= 256 MiB before reading; the run took 12 s", ["12 s"]),
    ("the step took 227.5 ms, 1.8x faster, 99.2% agreement, peak 255 MiB", ["227.5 ms", "1.8x", "99.2%", "255 MiB"]),
    ("the limit is 1 GB. The run took 40 s and used 3.6 GB", ["40 s", "3.6 GB"]),
    ("(the tolerance is 2% of the largest logit): 99.80% agree", ["99.80%"]),
    ("compile time 77 s -> 58 s, top-1 93.63% -> 93.63%", ["77 s", "58 s", "93.63%", "93.63%"]),
    ("more than 5 min at the default level; 69.40% top-1", ["5 min", "69.40%"]),
]


def self_test():
    bad = [(t, measured_numbers(t), want) for t, want in SELF_TEST if measured_numbers(t) != want]
    for t, got, want in bad:
        print(f"list-claims self-test: {t!r}: measured {got}, expected {want}")
    print(f"list-claims self-test: {len(SELF_TEST) - len(bad)} of {len(SELF_TEST)} cases right")
    return 1 if bad else 0


def known_commits(candidates):
    """The candidates git resolves to a commit (one git call for all)."""
    cands = sorted(set(candidates))
    if not cands:
        return set()
    shallow = subprocess.run(["git", "-C", ROOT, "rev-parse", "--is-shallow-repository"], capture_output=True, text=True).stdout
    if shallow.strip() == "true":  # a shallow clone (CI's may be) cannot tell old commits from other hex: trust them
        print("list-claims: a shallow clone: hashes are taken as commits unchecked", file=sys.stderr)
        return set(cands)
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
    ap.add_argument("--self-test", action="store_true", help="check the setting/measurement classifier and exit")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    if a.self_test:
        sys.exit(self_test())
    files = a.files or [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    found = []  # (file, line, numbers, commands, days, hashes)
    all_hashes = []
    for f in files:
        try:
            lines = open(f, encoding="utf-8").read().splitlines()
        except OSError as e:
            sys.exit(f"list-claims: cannot read {f}: {e.strerror}")
        for start, text, ctx in blocks(lines):
            nums = measured_numbers(text)
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
