#!/usr/bin/env python3
"""torch_reference.py — PyTorch's time for what `pfq bench` times, on the same machine: one SGD
training step (forward + cross-entropy + backward + SGD with momentum and weight decay) and
inference. Inputs <= 64 px (pfq's "cifar" variant): pfq's CIFAR models built identically in
PyTorch (ResNet-20/32/56 and MobileNetV1 from tools/torch_pfq_models.py, MobileNetV2 here; same
module names and channel arithmetic, so parameter counts match pfq's). Larger inputs (pfq's
"imagenet" variant): torchvision's own definitions (resnet18, resnet50, mobilenet_v2) and a
MobileNetV1 from torchvision's Conv2dNormActivation blocks at ImageNet strides; compare.sh
checks their parameter counts against pfq's. Synthetic data, median/min/max after warm-up, JSON.

    python3 bench/torch_reference.py --device cuda --channels-last --json out.json
    python3 bench/torch_reference.py --device cpu --threads 2 --steps 3     # CPU issue (#7)

Eager mode, no torch.compile. On CUDA: cudnn.benchmark on (like pfq's cudnnFind), TF32 off
unless --tf32 (pfq: PFQ_ALLOW_TF32=1), each step timed to a torch.cuda.synchronize().
peak_rss_mib of a result is the process's peak resident memory read after that model's steps,
as `pfq bench` reports it: monotonic, so per-model peaks need one process per model and mode
(bench/compare.sh runs it that way). The output records where torch comes from (Debian package
or pip), the BLAS library Debian's torch loads and OPENBLAS_CORETYPE.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
try:
    import torch_pfq_models as pm  # ResNetCifar, MobileNetV1, conv_bn_act, make_divisible, init_like_pfq
except ImportError as e:  # pragma: no cover - the repository always has it
    raise SystemExit(f"torch_reference.py: needs tools/torch_pfq_models.py next to bench/: {e}")


class ConvBNReLU6(nn.Sequential):
    """blocks.cpp ConvBNAct with ReLU6: keys .0 (conv), .1 (bn)."""

    def __init__(self, cin, cout, k, stride, groups):
        super().__init__(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU6())


class InvertedResidual(nn.Module):
    """blocks.cpp InvertedResidual: [expand 1x1] -> depthwise 3x3 -> project 1x1 + BN, optional add."""

    def __init__(self, cin, hidden, cout, stride, expand, residual):
        super().__init__()
        layers = [ConvBNReLU6(cin, hidden, 1, 1, 1)] if expand else []
        layers += [ConvBNReLU6(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """pfq's mobilenet_v2(cfg) (layers/models/mobilenet_v2.cpp), cifar variant for inputs <= 64:
    stem stride 1 and the second stage's stride 1; last conv make_divisible(1280 * max(1, width))."""

    def __init__(self, in_channels=3, num_classes=10, width=1.0, cifar=True):
        super().__init__()
        rows = [(1, 16, 1, 1), (6, 24, 2, 1 if cifar else 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]
        cin = pm.make_divisible(32 * width)
        feats = [ConvBNReLU6(in_channels, cin, 3, 1 if cifar else 2, 1)]
        for t, c, n, s in rows:
            cout = pm.make_divisible(c * width)
            for i in range(n):
                stride = s if i == 0 else 1
                hidden = int(round(cin * t)) if t != 1 else cin
                feats.append(InvertedResidual(cin, hidden, cout, stride, t != 1, stride == 1 and cin == cout))
                cin = cout
        last = pm.make_divisible(1280 * max(1.0, width))
        feats.append(ConvBNReLU6(cin, last, 1, 1, 1))
        self.features = nn.Sequential(*feats)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))
        pm.init_like_pfq(self, linear_std=0.01)

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def imagenet_mobilenet_v1(in_channels, num_classes, width):
    """MobileNetV1 as torchvision would build it (torchvision has none): Conv2dNormActivation
    (conv, BN, ReLU) blocks, stem 3x3 stride 2, the 13 depthwise-separable blocks at ImageNet
    strides, global average pool, fc; pfq's mobilenet_v1 "imagenet" variant."""
    from torchvision.ops.misc import Conv2dNormActivation as CNA

    cin = pm.make_divisible(32 * width)
    feats = [CNA(in_channels, cin, 3, 2)]
    for c, stride in pm.MOBILENET_V1_BLOCKS:
        cout = pm.make_divisible(c * width)
        feats += [CNA(cin, cin, 3, stride, groups=cin), CNA(cin, cout, 1, 1)]
        cin = cout
    return nn.Sequential(*feats, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(cin, num_classes))


def build(arch, in_channels, num_classes, width, size=32):
    """pfq's model of that name at that input size: pfq resolves the variant from the size (<= 64:
    cifar, else imagenet; layers/models/model_config.cpp), and so does this."""
    if size > 64:
        import torchvision

        if in_channels != 3:
            raise SystemExit(f"torch_reference.py: torchvision's {arch} takes 3 input channels, got {in_channels}")
        if arch in ("resnet18", "resnet50"):
            if width != 1.0:
                raise SystemExit(f"torch_reference.py: torchvision's {arch} has no width multiplier (got {width})")
            return getattr(torchvision.models, arch)(num_classes=num_classes)
        if arch == "mobilenetv2":
            return torchvision.models.mobilenet_v2(num_classes=num_classes, width_mult=width)
        if arch == "mobilenetv1":
            return imagenet_mobilenet_v1(in_channels, num_classes, width)
        raise SystemExit(f"torch_reference.py: unknown arch '{arch}' at {size} px (expected resnet18, resnet50, "
                         "mobilenetv1 or mobilenetv2)")
    if arch == "mobilenetv2":
        return MobileNetV2(in_channels, num_classes, width)
    return pm.build(arch, in_channels, num_classes, width)


def peak_rss_mib():
    """Peak resident set size of this process so far (Linux: ru_maxrss in KiB; at least the current RSS,
    which the kernel's high-water mark can lag by a fraction of a MiB), as pfq's bench_modes.cpp."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, current_rss_mib())


def current_rss_mib():
    """Resident set size of this process now (/proc/self/statm), 0 where unavailable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def command_output(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def torch_origin():
    """Which torch this is: the Debian package that owns it (name and version) or pip."""
    owner = command_output(["dpkg", "-S", torch.__file__])
    if owner:
        pkg = owner.split(":")[0]
        version = command_output(["dpkg-query", "-W", "-f=${Version}", pkg])
        return {"source": "debian", "package": pkg, "package_version": version, "path": torch.__file__}
    return {"source": "pip (PyPI or a wheel)", "package": "torch", "package_version": torch.__version__, "path": torch.__file__}


def blas_library():
    """The libblas.so.3 Debian's alternatives select (Debian's torch is built with BLAS_INFO=generic)."""
    for link in ("/etc/alternatives/libblas.so.3-x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu/libblas.so.3"):
        if os.path.exists(link):
            return os.path.realpath(link)
    return None


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def print_profile(args, arch, mode, device, step):
    """torch.profiler over --profile more steps: the kernels (GPU) or ops (CPU) by self time, to stderr."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(args.profile):
            step()
        sync(device)
    layout = " channels-last" if args.channels_last else ""
    print(f"profile of {arch} {mode}{layout}, {args.profile} steps (totals over all of them):", file=sys.stderr)
    # PyTorch 2.4 renamed the CUDA columns "device"; older versions know only "cuda".
    keys = ["self_device_time_total", "self_cuda_time_total"] if device.type == "cuda" else ["self_cpu_time_total"]
    for key in keys:
        try:
            print(prof.key_averages().table(sort_by=key, row_limit=args.profile_rows, max_name_column_width=70), file=sys.stderr)
            return
        except (AttributeError, KeyError, ValueError):
            continue


def bench_one(args, arch, mode, device):
    rss_before_model = current_rss_mib()
    torch.manual_seed(1)
    model = build(arch, args.channels, args.classes, args.width, args.size).to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.randn(args.batch, args.channels, args.size, args.size, device=device).contiguous(memory_format=fmt)
    y = (torch.arange(args.batch, device=device) % args.classes).long()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    train = mode == "train"
    model.train(train)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        if train:
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)

    times = []
    for s in range(args.warmup + args.steps):
        sync(device)
        t0 = time.perf_counter()
        step()
        sync(device)
        ms = (time.perf_counter() - t0) * 1e3
        if s >= args.warmup:
            times.append(ms)
    med = statistics.median(times)
    if args.profile > 0:
        print_profile(args, arch, mode, device, step)
    return {"model": arch, "mode": mode, "batch": args.batch, "size": args.size, "classes": args.classes, "median_ms": med, "min_ms": min(times), "max_ms": max(times),
            "images_per_s": args.batch / (med * 1e-3), "params": sum(p.numel() for p in model.parameters()),
            "peak_rss_mib": peak_rss_mib(), "rss_before_model_mib": rss_before_model}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet20", "mobilenetv1", "mobilenetv2"])
    ap.add_argument("--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--channels-last", action="store_true", help="NHWC memory format for model and input")
    ap.add_argument("--batch", "--batch-size", dest="batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32, help="input height and width")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = PyTorch's default)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in cuDNN convolutions and cuBLAS matmuls")
    ap.add_argument("--no-cudnn-benchmark", action="store_true", help="use cuDNN heuristics instead of measured algorithms")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after timing, run N more steps under torch.profiler and print the top kernels/ops (stderr)")
    ap.add_argument("--profile-rows", type=int, default=30, help="rows of the --profile table")
    ap.add_argument("--json", metavar="PATH", help="also write the JSON document to PATH ('-': stdout only)")
    args = ap.parse_args()
    for name in ("batch", "size", "channels", "classes", "steps"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name} must be positive")
    if args.warmup < 0 or args.threads < 0:
        ap.error("--warmup and --threads must be non-negative")

    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("torch_reference.py: --device cuda but torch.cuda.is_available() is False")
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    out = {"framework": "pytorch", "torch": torch.__version__, "device": str(device), "channels_last": args.channels_last,
           "tf32": args.tf32 if device.type == "cuda" else None, "threads": torch.get_num_threads(),
           "cudnn_benchmark": (not args.no_cudnn_benchmark) if device.type == "cuda" else None,
           "machine": platform.node(), "torch_origin": torch_origin(), "blas": blas_library(),
           "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
           "peak_rss": "peak_rss_mib of a result: the process's peak resident memory after that result's steps (monotonic:"
                       " one model and mode per process gives per-model peaks)", "results": []}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
        out["cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version()
    for arch in args.models:
        for mode in args.modes:
            r = bench_one(args, arch, mode, device)
            out["results"].append(r)
            print(f"{arch:<12} {mode:<5} batch {args.batch} on {device}{' channels-last' if args.channels_last else ''}: "
                  f"median {r['median_ms']:.2f} ms (min {r['min_ms']:.2f}, max {r['max_ms']:.2f})  "
                  f"{r['images_per_s']:.0f} img/s  params {r['params']}  peak RSS {r['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    text = json.dumps(out, indent=2)
    if args.json and args.json != "-":
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
