#!/usr/bin/env python3
# make_safetensors_fixture.py — writes tests/fixtures/reference.safetensors with the reference
# safetensors implementation (pip install safetensors numpy; no torch), for
# tests/core/test_safetensors.cpp, and prints the header and values the test hard-codes.
# Values are arange-based and exact in every dtype, so the file is deterministic.
# Leaves out: BF16 (numpy has no bfloat16; the C++ test builds a BF16 file by hand).
import json
import os
import struct
import sys

import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "reference.safetensors")


def tensors():
    return {
        "weight_f32": (np.arange(12, dtype=np.float32) * 0.5 - 1.0).reshape(3, 4),  # -1.0 .. 4.5
        "bias_f64": np.arange(3, dtype=np.float64) / 8.0,  # 0, 0.125, 0.25
        "labels_i64": np.arange(5, dtype=np.int64) * -3 + 7,  # 7, 4, 1, -2, -5
        "pixels_u8": (np.arange(6, dtype=np.int64) * 50).astype(np.uint8).reshape(2, 3),  # 0 .. 250
        "scalar_f32": np.array(3.25, dtype=np.float32),  # 0-d
        "empty_f32": np.zeros((0, 2), dtype=np.float32),
        # zero, normal, max, smallest subnormal, infinities, nan: exercises the F16 -> F32 path
        "half_f16": np.array([0, 1, -2, 0.5, 65504, 2.0**-24, np.inf, -np.inf, np.nan], dtype=np.float16),
    }


# One key only: the reference keeps metadata in a hash map, so several keys come out in a
# random order and the file would change on every run.
METADATA = {"producer": "tools/make_safetensors_fixture.py"}


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors(), OUT, metadata=METADATA)
    with open(OUT, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    print(f"{OUT}: {len(blob)} bytes, header length {n}")
    print(json.dumps(json.loads(blob[8 : 8 + n]), indent=1))
    for name, arr in tensors().items():
        print(name, arr.dtype, list(arr.shape), arr.flatten().tolist())
    if len(blob) >= 4096:
        sys.exit("fixture must stay under 4 KB")


if __name__ == "__main__":
    main()
