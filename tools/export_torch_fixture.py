#!/usr/bin/python3
# export_torch_fixture.py — writes the PyTorch-exported fixtures of tests/e2e/test_torch_fixture.cpp:
# for ResNet-20 (width 0.25) and MobileNetV1 (width 0.0625), 1-channel 28x28 inputs, 10 classes,
# built in PyTorch with pfq's module names (tools/torch_pfq_models.py), seeded weights and
# non-trivial BN running statistics (train-mode passes on random data, then random gamma/beta),
# tests/fixtures/torch_<name>.safetensors holds the plain state dict exactly as PyTorch names it
# (metadata {"format": "pt"}, as Hugging Face writes, no pfq metadata) and
# tests/fixtures/torch_<name>.io.safetensors the fixed input and the eval-mode logits.
# Run with Debian's /usr/bin/python3 (torch 1.13); deterministic on CPU. Leaves out CUDA.
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_pfq_models import build, save_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures")
FIXTURES = [("resnet20_w0.25", "resnet20", 0.25), ("mobilenetv1_w0.0625", "mobilenetv1", 0.0625)]
MAX_TOTAL = 200 * 1024


def make(arch, width, seed):
    torch.manual_seed(seed)
    model = build(arch, in_channels=1, num_classes=10, width=width)
    # Running statistics as training leaves them: a few train-mode passes (cumulative average).
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(16, 1, 28, 28))
        # gamma / beta away from 1 / 0 so the folded affine transform is exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.8, 1.25))
    model.eval()
    return model


def main():
    os.makedirs(OUT, exist_ok=True)
    total = 0
    for i, (name, arch, width) in enumerate(FIXTURES):
        model = make(arch, width, seed=10 + i)
        g = torch.Generator().manual_seed(100 + i)
        x = torch.randn(3, 1, 28, 28, generator=g)
        with torch.no_grad():
            logits = model(x)
        weights = os.path.join(OUT, f"torch_{name}.safetensors")
        io = os.path.join(OUT, f"torch_{name}.io.safetensors")
        save_safetensors(weights, model.state_dict(), metadata={"format": "pt"})
        save_safetensors(io, {"input": x, "logits": logits})
        size = os.path.getsize(weights) + os.path.getsize(io)
        total += size
        params = sum(p.numel() for p in model.parameters())
        print(f"{weights}: {arch} width {width}, {params} parameters, {len(model.state_dict())} tensors; "
              f"logits[0] = {[round(v, 4) for v in logits[0].tolist()]}; {size} bytes with {os.path.basename(io)}")
    print(f"total {total} bytes (torch {torch.__version__})")
    if total > MAX_TOTAL:
        sys.exit(f"fixtures must stay under {MAX_TOTAL} bytes in all")


if __name__ == "__main__":
    main()
