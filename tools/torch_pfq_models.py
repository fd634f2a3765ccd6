# torch_pfq_models.py — PyTorch twins of pfq's model builders (layers/models/): CIFAR-style
# ResNet-20/32/56 and MobileNetV1 (cifar variant), with the same module names (so state dicts
# are interchangeable with pfq checkpoints), the same channel arithmetic (width multiplier,
# make_divisible) and the same initialisation (kaiming_normal fan_out convs, BN 1/0, Linear
# default for ResNet, N(0, 0.01) for MobileNetV1). Used by tools/export_torch_fixture.py and
# bench/torch_train_fmnist.py (run with /usr/bin/python3, which has torch). Leaves out
# MobileNetV2, ResNet-18, the ImageNet variants and pfq's random streams (weights differ).
import json
import math

import torch
from torch import nn


def scaled(c, width):
    """resnet.cpp: max(1, llround(c * width)) (llround rounds halves away from zero)."""
    return max(1, int(math.floor(c * width + 0.5)))


def make_divisible(v, divisor=8):
    """model_config.cpp / torchvision's _make_divisible."""
    nv = max(divisor, int(v + divisor / 2.0) // divisor * divisor)
    if nv < 0.9 * v:
        nv += divisor
    return nv


class BasicBlock(nn.Module):
    def __init__(self, cin, mid, cout, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(mid, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if downsample:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.downsample is None else self.downsample(x)
        return self.relu(y + s)


class ResNetCifar(nn.Module):
    """pfq's resnet_cifar(depth, cfg): projection (1x1 conv + BN) shortcuts where shape changes."""

    def __init__(self, depth=20, in_channels=3, num_classes=10, width=1.0):
        super().__init__()
        assert depth >= 8 and (depth - 2) % 6 == 0, "CIFAR ResNet depth must be 6n + 2"
        n = (depth - 2) // 6
        widths = [scaled(16, width), scaled(32, width), scaled(64, width)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        cin = widths[0]
        for s, w in enumerate(widths):
            blocks = []
            for b in range(n):
                stride = 2 if (s > 0 and b == 0) else 1
                blocks.append(BasicBlock(cin, w, w, stride, stride != 1 or cin != w))
                cin = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(cin, num_classes)
        init_like_pfq(self, linear_std=None)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


def conv_bn_act(cin, cout, k, stride, groups):
    """blocks.cpp ConvBNAct with ReLU: keys .0 (conv), .1 (bn)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.dw = conv_bn_act(cin, cin, 3, stride, cin)
        self.pw = conv_bn_act(cin, cout, 1, 1, 1)

    def forward(self, x):
        return self.pw(self.dw(x))


MOBILENET_V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
                       (512, 1), (1024, 2), (1024, 1)]


class MobileNetV1(nn.Module):
    """pfq's mobilenet_v1(cfg), cifar variant (input <= 64): stem stride 1, second block stride 1."""

    def __init__(self, in_channels=3, num_classes=10, width=1.0, cifar=True):
        super().__init__()
        cin = make_divisible(32 * width)
        layers = [conv_bn_act(in_channels, cin, 3, 1 if cifar else 2, 1)]
        for i, (c, stride) in enumerate(MOBILENET_V1_BLOCKS):
            if cifar and i == 1:
                stride = 1
            cout = make_divisible(c * width)
            layers.append(DepthwiseSeparable(cin, cout, stride))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(cin, num_classes)
        init_like_pfq(self, linear_std=0.01)

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(self.features(x))))


def init_like_pfq(model, linear_std):
    """init.cpp: kaiming_normal_ fan_out (ReLU gain) convs, BN weight 1 / bias 0; Linear keeps
    PyTorch's default unless linear_std is given (then N(0, std) weight, zero bias)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)


def build(arch, in_channels, num_classes, width):
    """pfq's model names: resnet20 | resnet32 | resnet56 | mobilenetv1 (28x28 / 32x32 inputs)."""
    if arch.startswith("resnet") and arch[6:].isdigit():
        return ResNetCifar(int(arch[6:]), in_channels, num_classes, width)
    if arch == "mobilenetv1":
        return MobileNetV1(in_channels, num_classes, width)
    raise SystemExit(f"unknown arch '{arch}' (expected resnet20, resnet32, resnet56 or mobilenetv1)")


_ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.int64: "I64", torch.int32: "I32",
              torch.uint8: "U8"}


def save_safetensors(path, tensors, metadata=None):
    """The safetensors format written by hand (no `safetensors` package needed): 8-byte
    little-endian header length, JSON header (data offsets relative to
    the end of the header), header padded with spaces to a multiple of 8, raw little-endian data.
    Like the reference writer, wider dtypes come first (then by name) so every tensor is aligned."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors, key=lambda n: (-tensors[n].element_size(), n)):
        t = tensors[name].detach().cpu().contiguous()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(len(js).to_bytes(8, "little"))
        f.write(js)
        for b in blobs:
            f.write(b)
