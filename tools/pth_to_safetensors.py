#!/usr/bin/env python3
# pth_to_safetensors.py — converts a PyTorch pickle checkpoint (.pth / .pt: a state dict, a dict
# holding one under "state_dict" / "model_state_dict" / "model" / "net", or a pickled nn.Module)
# into the safetensors state dict `pfq import` and every pfq command read (docs/pretrained.md).
# DataParallel's "module." prefix is dropped; non-tensor entries are listed and left out; floats
# keep their dtype (pfq converts float16 / bfloat16 to float32 on load). Written atomically.
# Needs torch and safetensors (e.g. Debian's python3-torch and `pip install safetensors`).
# Loads with weights_only=True (no code from the file runs) unless --unsafe-pickle is given.
import argparse
import os
import sys
import tempfile

import torch
from safetensors.torch import save_file

STATE_KEYS = ("state_dict", "model_state_dict", "model", "net")


def find_state_dict(obj, key):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if not isinstance(obj, dict):
        sys.exit(f"expected a state dict, a dict holding one or an nn.Module, got {type(obj).__name__}")
    if key:
        if key not in obj:
            sys.exit(f"--key {key}: not in the file (keys: {', '.join(map(str, obj))})")
        return find_state_dict(obj[key], None)
    if any(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    for k in STATE_KEYS:
        if k in obj:
            return find_state_dict(obj[k], None)
    sys.exit(f"no tensors at the top level and none of {', '.join(STATE_KEYS)}; keys: {', '.join(map(str, obj))} "
             "(name the one holding the weights with --key)")


def main():
    ap = argparse.ArgumentParser(description="convert a PyTorch .pth / .pt checkpoint into a safetensors state dict for pfq")
    ap.add_argument("input", help=".pth / .pt file")
    ap.add_argument("output", help=".safetensors file to write")
    ap.add_argument("--key", help="the entry of the pickled dict that holds the state dict")
    ap.add_argument("--unsafe-pickle", action="store_true",
                    help="load with weights_only=False (runs code from the file: only for files you trust)")
    a = ap.parse_args()
    try:
        obj = torch.load(a.input, map_location="cpu", weights_only=not a.unsafe_pickle)
    except TypeError:  # torch older than 1.13: no weights_only
        obj = torch.load(a.input, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - the pickle's own error, with the way out
        sys.exit(f"{a.input}: cannot be loaded with weights_only=True ({e}); if you trust the file, pass --unsafe-pickle")
    state = find_state_dict(obj, a.key)
    tensors, skipped = {}, []
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            skipped.append(name)
            continue
        if name.startswith("module."):
            name = name[len("module."):]
        tensors[name] = value.detach().cpu().contiguous().clone()  # clone: safetensors refuses shared storage
    if not tensors:
        sys.exit(f"{a.input}: no tensors found")
    if skipped:
        print(f"left out {len(skipped)} non-tensor entries: {', '.join(skipped[:8])}{' ...' if len(skipped) > 8 else ''}")
    out_dir = os.path.dirname(os.path.abspath(a.output))
    fd, tmp = tempfile.mkstemp(prefix=".pth_to_safetensors.", dir=out_dir)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": "pt"})
        os.replace(tmp, a.output)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"wrote {a.output}: {len(tensors)} tensors from {a.input}")


if __name__ == "__main__":
    main()
