#!/usr/bin/python3
"""make_fashion_imagefolder.py — an ImageNet-style image folder from real images: Fashion-MNIST
digits' pictures written as 3-channel JPEG and PNG files of varied sizes, for trying the
pretrained-weights workflow (docs/pretrained.md section 7) where ImageNet itself is not at hand.

  OUT/train/<class>/<index>.JPEG|.png   --train-per-class images per class from the training set
  OUT/val/<class>/<index>.JPEG|.png     --val-per-class images per class from the test set
  OUT/manifest.json                      counts, sizes and the arguments

Each 28x28 grey image is resized (PIL bicubic) to a random side of 40 to 112 pixels with an aspect
ratio of 3:4 to 4:3, converted to RGB (the grey replicated: three equal channels) and written as a
JPEG (quality 75 to 95, a quarter of them progressive) or, one in four, a PNG. Seeded: the same
arguments and library versions write the same bytes. Needs Pillow and numpy
(Debian's python3-pil, python3-numpy):

  /usr/bin/python3 tools/make_fashion_imagefolder.py OUT [--train-per-class 500] [--val-per-class 100]
      [--idx-dir /usr/share/datasets/fashion-mnist]
"""
import argparse
import gzip
import json
import os
import random
import struct

import numpy as np
from PIL import Image

CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2049:
        return np.frombuffer(data, np.uint8, n, 8)
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, n * rows * cols, 16).reshape(n, rows, cols)
    raise SystemExit(f"{path}: not an IDX image or label file (magic {magic})")


def write_split(out, split, images, labels, per_class, rng):
    taken = {c: 0 for c in range(len(CLASSES))}
    sizes = []
    for i in range(len(labels)):
        c = int(labels[i])
        if taken[c] >= per_class:
            continue
        taken[c] += 1
        side = rng.randint(40, 112)
        aspect = rng.uniform(0.75, 4 / 3)
        w, h = (side, max(8, round(side / aspect))) if rng.random() < 0.5 else (max(8, round(side * aspect)), side)
        img = Image.fromarray(images[i]).resize((w, h), Image.BICUBIC).convert("RGB")
        folder = os.path.join(out, split, CLASSES[c])
        os.makedirs(folder, exist_ok=True)
        base = os.path.join(folder, f"{i:05d}")
        if rng.random() < 0.25:
            img.save(base + ".png")
        else:
            img.save(base + ".JPEG", quality=rng.randint(75, 95), progressive=rng.random() < 0.25)
        sizes.append((w, h))
        if all(v >= per_class for v in taken.values()):
            break
    short = [min(s) for s in sizes]
    return {"images": len(sizes), "per_class": taken, "shorter_side_min": min(short), "shorter_side_max": max(short)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--train-per-class", type=int, default=500)
    p.add_argument("--val-per-class", type=int, default=100)
    p.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if os.path.exists(os.path.join(a.out, "manifest.json")):
        raise SystemExit(f"{a.out} already holds an image folder (manifest.json): remove it or choose another folder")
    rng = random.Random(a.seed)
    d = a.idx_dir
    manifest = {"source": "Fashion-MNIST", "args": vars(a), "classes": CLASSES}
    manifest["train"] = write_split(a.out, "train", read_idx(f"{d}/train-images-idx3-ubyte.gz"),
                                    read_idx(f"{d}/train-labels-idx1-ubyte.gz"), a.train_per_class, rng)
    manifest["val"] = write_split(a.out, "val", read_idx(f"{d}/t10k-images-idx3-ubyte.gz"),
                                  read_idx(f"{d}/t10k-labels-idx1-ubyte.gz"), a.val_per_class, rng)
    tmp = os.path.join(a.out, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp, os.path.join(a.out, "manifest.json"))
    print(json.dumps({k: manifest[k] for k in ("train", "val")}))


if __name__ == "__main__":
    main()
