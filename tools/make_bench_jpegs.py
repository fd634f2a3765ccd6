#!/usr/bin/env python3
"""make_bench_jpegs.py — writes an ImageNet-style folder of ImageNet-sized JPEGs for
`pfq bench --modes loader --loader-datasets imagefolder` (docs/performance.md, loader section).

Images are 500x375 (or 375x500) pseudo-natural pictures: octaves of smoothed noise with a 1/f
spectrum, like photographs, saved at JPEG quality 96 with 4:2:0 subsampling, about 110 KB each
(ImageNet's average file). Seeded: the same arguments write the same bytes.
Usage: /usr/bin/python3 tools/make_bench_jpegs.py OUT [--classes 10] [--per-class 50] [--seed 0]
Writes OUT/train/<class>/<n>.JPEG and OUT/val/<class>/<n>.JPEG (val: a fifth as many).
Needs numpy and Pillow (Debian: python3-numpy python3-pil).
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image


def picture(rng, h, w):
    """h x w x 3 uint8: octaves of bilinearly upsampled noise, amplitude halving per octave."""
    out = np.zeros((h, w, 3), np.float64)
    amp = 1.0
    cells = 3
    while cells < 2 * max(h, w):
        small = rng.standard_normal((cells, cells, 3))
        img = Image.fromarray(np.uint8(np.clip(small * 40 + 128, 0, 255)), "RGB").resize((w, h), Image.BILINEAR)
        out += amp * (np.asarray(img, np.float64) - 128.0)
        amp *= 0.92
        cells *= 2
    out = out / np.abs(out).max() * 110.0 + 128.0 + rng.uniform(-40, 40, (1, 1, 3))
    return np.uint8(np.clip(out, 0, 255))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--per-class", type=int, default=50, help="training images per class (val: a fifth)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quality", type=int, default=96)
    a = ap.parse_args()
    if a.classes < 1 or a.per_class < 5:
        sys.exit("make_bench_jpegs.py: need --classes >= 1 and --per-class >= 5")
    rng = np.random.default_rng(a.seed)
    total = 0
    count = 0
    for split, n in (("train", a.per_class), ("val", a.per_class // 5)):
        for c in range(a.classes):
            d = os.path.join(a.out, split, "n%08d" % c)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                h, w = (375, 500) if rng.uniform() < 0.75 else (500, 375)
                path = os.path.join(d, "%s_%d.JPEG" % (split, i))
                tmp = path + ".tmp"
                Image.fromarray(picture(rng, h, w), "RGB").save(tmp, "JPEG", quality=a.quality, subsampling=2)
                os.replace(tmp, path)
                total += os.path.getsize(path)
                count += 1
    print("make_bench_jpegs.py: wrote %d JPEGs to %s, mean %.1f KB" % (count, a.out, total / count / 1024))


if __name__ == "__main__":
    main()
