#!/usr/bin/python3
# torch_train_fmnist.py — the `pfq train` default recipe in PyTorch, for comparing accuracy:
# ResNet-20 (width 1) and MobileNetV1 (cifar variant, width 0.5) on Fashion-MNIST from the IDX
# .gz files, with pfq's architectures and initialisation (tools/torch_pfq_models.py) and exactly
# the recipe of apps/trainer.cpp + data/factory.cpp: SGD lr 0.1, momentum 0.9, Nesterov,
# weight decay 5e-4 on every parameter (BN and biases included: --no-decay-bn-bias is off by
# default), cosine LR set before every step at t = epoch + iter / iters (eta_min 0, no warmup),
# batch 128 with drop_last and a per-epoch shuffle, RandomCrop(28, padding=2) (zero padding) +
# horizontal flip p=0.5 + Normalize(0.2860, 0.3530) for training, normalize only for test
# (batch 256), plain cross-entropy. Prints per-epoch test top-1 and writes JSON.
# Run with Debian's /usr/bin/python3 (torch 1.13, no torchvision). Leaves out pfq's random
# streams (weights, shuffles and crops differ; the recipe is the same) and data-loader workers.
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from torch_pfq_models import build  # noqa: E402

MEAN, STD = 0.2860, 0.3530  # data/factory.cpp norm_stats("fashion-mnist")


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def load_split(data_dir, prefix, limit):
    def find(base):
        for p in (os.path.join(data_dir, base), os.path.join(data_dir, base + ".gz")):
            if os.path.exists(p):
                return p
        sys.exit(f"IDX file not found: {os.path.join(data_dir, base)}(.gz)")

    x = read_idx(find(f"{prefix}-images-idx3-ubyte")).float().div_(255.0).unsqueeze(1)  # [N, 1, 28, 28] in [0, 1]
    y = read_idx(find(f"{prefix}-labels-idx1-ubyte")).long()
    if limit > 0:  # pfq: SubsetDataset keeps the first N
        x, y = x[:limit], y[:limit]
    return x, y


def augment(x, gen):
    """RandomCrop(28, padding=2) with zero padding, then RandomHorizontalFlip(0.5), then Normalize."""
    n = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2))
    tops = torch.randint(0, 5, (n,), generator=gen)
    lefts = torch.randint(0, 5, (n,), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        t, l = int(tops[i]), int(lefts[i])
        img = padded[i, :, t:t + 28, l:l + 28]
        out[i] = img.flip(-1) if flips[i] else img
    return (out - MEAN) / STD


def cosine_lr(base, t, total):
    """core/optim/lr_schedule: eta_min + (base - eta_min) * (1 + cos(pi * min(t, T) / T)) / 2, eta_min 0."""
    return base * (1 + math.cos(math.pi * min(t, total) / total)) / 2


@torch.no_grad()
def evaluate(model, x, y, batch=256):
    model.eval()
    loss_sum, c1, c5 = 0.0, 0, 0
    for i in range(0, x.shape[0], batch):
        xb, yb = (x[i:i + batch] - MEAN) / STD, y[i:i + batch]
        logits = model(xb)
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
        target = logits.gather(1, yb[:, None])
        rank = (logits > target).sum(1)  # classes strictly above the target, as pfq's evaluate
        c1 += int((rank < 1).sum())
        c5 += int((rank < 5).sum())
    model.train()
    n = x.shape[0]
    return {"test_loss": loss_sum / n, "test_top1": 100.0 * c1 / n, "test_top5": 100.0 * c5 / n}


def train_one(arch, width, args, train, test):
    torch.manual_seed(args.seed)
    model = build(arch, in_channels=1, num_classes=10, width=width)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    x, y = train
    iters = x.shape[0] // args.batch_size  # drop_last
    if iters == 0:
        sys.exit(f"training set has fewer images ({x.shape[0]}) than one batch ({args.batch_size})")
    gen = torch.Generator().manual_seed(args.seed)
    rows = []
    model.train()
    for epoch in range(args.epochs):
        t0 = time.time()
        order = torch.randperm(x.shape[0], generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        for it in range(iters):
            lr = cosine_lr(args.lr, epoch + it / iters, args.epochs)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = order[it * args.batch_size:(it + 1) * args.batch_size]
            xb, yb = augment(x[idx], gen), y[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            if not math.isfinite(loss.item()):
                sys.exit(f"{arch}: training diverged at epoch {epoch + 1} batch {it}")
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * yb.shape[0]
            correct += int((logits.argmax(1) == yb).sum())
            seen += yb.shape[0]
        secs = time.time() - t0
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen,
               **evaluate(model, *test), "epoch_seconds": secs, "images_per_second": seen / secs}
        rows.append(row)
        print(f"{arch} (width {width}) epoch {epoch + 1}/{args.epochs}: train loss {row['train_loss']:.4f} "
              f"acc {row['train_acc']:.2f}% | test top1 {row['test_top1']:.2f}% top5 {row['test_top5']:.2f}% "
              f"loss {row['test_loss']:.4f} | {secs:.1f} s", flush=True)
    params = sum(p.numel() for p in model.parameters())
    return {"model": arch, "width": width, "params": params, "epochs": rows, "final_top1": rows[-1]["test_top1"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--models", nargs="+", default=["resnet20", "mobilenetv1"], choices=["resnet20", "mobilenetv1"])
    ap.add_argument("--resnet-width", type=float, default=1.0)
    ap.add_argument("--mobilenet-width", type=float, default=0.5)
    ap.add_argument("--epochs", type=int, default=10)  # pfq train --epochs default
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--limit-train", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--limit-test", type=int, default=0, help="use only the first N test images")
    ap.add_argument("--out", default="runs/torch_fmnist.json")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    train = load_split(args.data_dir, "train", args.limit_train)
    test = load_split(args.data_dir, "t10k", args.limit_test)
    recipe = {"optimizer": "sgd", "lr": args.lr, "momentum": 0.9, "nesterov": True, "weight_decay": args.weight_decay,
              "decay_bn_bias": True, "schedule": "cosine per iteration", "epochs": args.epochs,
              "batch_size": args.batch_size, "drop_last": True, "augment": "RandomCrop(28, padding=2) + hflip(0.5)",
              "normalize": [MEAN, STD], "init": "pfq builders (kaiming_normal fan_out convs)", "seed": args.seed,
              "limit_train": args.limit_train, "limit_test": args.limit_test}
    widths = {"resnet20": args.resnet_width, "mobilenetv1": args.mobilenet_width}
    results = [train_one(m, widths[m], args, train, test) for m in args.models]
    doc = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "data_dir": args.data_dir,
           "train_images": int(train[0].shape[0]), "test_images": int(test[0].shape[0]), "recipe": recipe,
           "results": results}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    for r in results:
        print(f"{r['model']} (width {r['width']}, {r['params']} parameters): final test top1 {r['final_top1']:.2f}%")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
