#!/usr/bin/env python3
"""make_index_tree.py — writes an ImageNet-shaped tree of empty .JPEG files, OUT/train/<wnid>/
<wnid>_<n>.JPEG (1000 classes by default, ImageNet's name lengths), for timing the start-up
listing of `pfq bench --modes index --data-dir OUT` (docs/performance.md, loader section).
Listing reads names only, so empty files measure it as real images would.
Usage: python3 tools/make_index_tree.py OUT [--files 100000] [--classes 1000]
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--files", type=int, default=100000)
    ap.add_argument("--classes", type=int, default=1000)
    a = ap.parse_args()
    if a.files < a.classes or a.classes < 1:
        sys.exit("make_index_tree.py: need --files >= --classes >= 1")
    for c in range(a.classes):
        wnid = "n%08d" % (1440764 + 7919 * c)
        d = os.path.join(a.out, "train", wnid)
        os.makedirs(d, exist_ok=True)
        lo, hi = a.files * c // a.classes, a.files * (c + 1) // a.classes
        for i in range(lo, hi):
            open(os.path.join(d, "%s_%d.JPEG" % (wnid, 10000 + i)), "wb").close()
    print("make_index_tree.py: %d empty files in %d classes under %s/train" % (a.files, a.classes, a.out))


if __name__ == "__main__":
    main()
