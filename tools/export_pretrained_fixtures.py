#!/usr/bin/env python3
# export_pretrained_fixtures.py — writes the parity fixtures of tests/e2e/test_pretrained_e2e.cpp:
# the zoo definitions people import from, built by the zoos' own code at reduced width with
# 10 classes: torchvision's ResNet-18 and ResNet-50 (torchvision.models.resnet.ResNet, every
# width / 16), torchvision's mobilenet_v2(width_mult=0.1) and timm's mobilenetv1_100 definition
# (timm.models.efficientnet._gen_mobilenet_v1 at channel_multiplier 0.125). Seeded weights with
# non-trivial BN statistics (train-mode passes on random data with a cumulative average, then
# random gamma / beta / variance scaling), saved with safetensors.torch.save_file in float16
# (halves the files; pfq converts float16 to float32 on load) and PyTorch's float32 eval-mode
# logits of those float16-rounded weights on two fixed 3x64x64 inputs (ImageNet definitions at a
# small input), all in tests/fixtures/pretrained_io.safetensors.
# Needs torch, torchvision, timm and safetensors, e.g.
#   /usr/bin/python3 -m venv --system-site-packages venv && venv/bin/pip install timm safetensors
# (Debian's python3-torch 1.13 / python3-torchvision 0.14; timm 1.0.31 from PyPI). Deterministic on CPU.
import os
import sys

import torch
import torch.nn as nn
import torchvision
import torchvision.models.resnet as tvr
import timm
from timm.models.efficientnet import _gen_mobilenet_v1
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures")
MAX_TOTAL = 800 * 1024


class NarrowResNet(tvr.ResNet):
    """torchvision's ResNet (its blocks, names and forward) with every width divided by `div`."""

    def __init__(self, block, layers, num_classes, div):
        self._div = div
        super().__init__(block, layers, num_classes=num_classes)
        stem = 64 // div
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.fc = nn.Linear(512 // div * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if planes == 64:  # layer1: the stem's width
            self.inplanes = 64 // self._div
        return super()._make_layer(block, planes // self._div, blocks, stride, dilate)


# name -> (builder, pfq flags the e2e test passes to `pfq import` besides recognition)
MODELS = {
    "resnet18": lambda: NarrowResNet(tvr.BasicBlock, [2, 2, 2, 2], 10, 16),
    "resnet50": lambda: NarrowResNet(tvr.Bottleneck, [3, 4, 6, 3], 10, 16),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(width_mult=0.1, num_classes=10),
    "timm_mobilenetv1_100": lambda: _gen_mobilenet_v1("mobilenetv1_100", channel_multiplier=0.125, num_classes=10),
}


def make(build, seed):
    torch.manual_seed(seed)
    model = build()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average: the statistics of the data seen
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 64, 64))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.8, 1.25))
        # float16 storage: the model computes with exactly the weights the file holds
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
        model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    model.eval()
    return model, state


def main():
    os.makedirs(OUT, exist_ok=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    io = {"input": x}
    total = 0
    for i, (name, build) in enumerate(MODELS.items()):
        model, state = make(build, seed=20 + i)
        with torch.no_grad():
            logits = model(x)
        io["logits." + name] = logits.contiguous()
        path = os.path.join(OUT, f"pretrained_{name}.safetensors")
        save_file({k: v.contiguous() for k, v in state.items()}, path, metadata={"format": "pt"})
        size = os.path.getsize(path)
        total += size
        params = sum(p.numel() for p in model.parameters())
        print(f"{path}: {params} parameters, {len(state)} tensors, {size} bytes; "
              f"logits[0] = {[round(v, 4) for v in logits[0].tolist()]}")
    path = os.path.join(OUT, "pretrained_io.safetensors")
    save_file(io, path)
    total += os.path.getsize(path)
    print(f"total {total} bytes (torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__})")
    if total > MAX_TOTAL:
        sys.exit(f"fixtures must stay under {MAX_TOTAL} bytes in all")


if __name__ == "__main__":
    main()
