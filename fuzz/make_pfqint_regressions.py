#!/usr/bin/env python3
"""make_pfqint_regressions.py — writes fuzz/regressions/pfqint/: the corpus's integer ResNet-20
(fuzz/corpus/pfqint/resnet20-w0.0625-w4a4.pfqint) edited past each bound the .pfqint loader
enforces (quant/integer/io.cpp). tests/reliability/test_fuzz_replay.cpp lists the message each
must be refused with. Needs numpy. Usage: fuzz/make_pfqint_regressions.py (from the repository root)
The corpus file came from `pfq train --model resnet20 --width 0.0625 --dataset fashion-mnist
--epochs 1 --batch-size 32 --limit-train 64 --limit-test 32 --threads 1 --workers 1 --seed 1`,
`pfq finetune <that>/last.safetensors --wbits 4 --abits 4` (same data flags) and `pfq export`."""
import json
import struct

import numpy as np

SRC = "fuzz/corpus/pfqint/resnet20-w0.0625-w4a4.pfqint"
OUT = "fuzz/regressions/pfqint/"


def load():
    b = open(SRC, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return h, bytearray(b[8 + n:]), json.loads(h["__metadata__"]["pfq_int_graph"])


def save(name, h, data, g):
    h["__metadata__"]["pfq_int_graph"] = json.dumps(g, separators=(",", ":"))
    hb = json.dumps(h, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    open(OUT + name, "wb").write(struct.pack("<Q", len(hb)) + hb + bytes(data))


def edit_tensor(h, data, name, dtype, index, value):
    s, e = h[name]["data_offsets"]
    a = np.frombuffer(bytes(data[s:e]), dtype=dtype).copy()
    a[index] = value
    data[s:e] = a.tobytes()


h, d, g = load()
w4 = [n for n in g["nodes"] if n["op"] == "conv2d" and n["weight_bits"] == 4][0]["name"]
edit_tensor(h, d, w4 + ".weight", np.int8, 3, 100)
save("weight-outside-bit-range.pfqint", h, d, g)
h, d, g = load()
rq = [n for n in g["nodes"] if n["op"] == "requant"][1]["name"]
edit_tensor(h, d, rq + ".term0.shift", np.int32, 0, 63)
save("shift-63.pfqint", h, d, g)
h, d, g = load()
edit_tensor(h, d, rq + ".term0.multiplier", np.int32, 0, 5)
save("multiplier-not-q31.pfqint", h, d, g)
h, d, g = load()
[n for n in g["nodes"] if n["op"] == "conv2d" and n["out_channels"] == 4][-1]["padding"] = [4096, 4096]
save("conv-padding-4096.pfqint", h, d, g)
h, d, g = load()
[n for n in g["nodes"] if n["op"] == "requant"][0]["frac_bits"] = 31
save("frac-bits-31.pfqint", h, d, g)
h, d, g = load()
g["input_shape"] = [1, 100000, 28]
save("input-shape-100000.pfqint", h, d, g)
b = open(SRC, "rb").read()
open(OUT + "truncated.pfqint", "wb").write(b[:len(b) - 100])
