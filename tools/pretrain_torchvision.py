#!/usr/bin/python3
"""pretrain_torchvision.py — trains a torchvision-defined model in PyTorch on an image folder and
saves its state dict as safetensors: the "pretrained PyTorch weights" of docs/pretrained.md
section 7, made where no ImageNet download is at hand (e.g. on the folder that
tools/make_fashion_imagefolder.py writes).

The model is torchvision's own definition (`torchvision.models.<arch>(num_classes=..., ...)`,
e.g. mobilenet_v2 with --width-mult), trained with SGD (momentum 0.9, Nesterov, cosine decay per
epoch) on RandomResizedCrop(--image-size) + horizontal flip, and evaluated with torchvision's
protocol: Resize(--resize-size) (PIL bilinear, antialiased), CenterCrop(--image-size), ImageNet
mean/std, classes in ImageFolder's (sorted) order. Writes OUT (safetensors, atomically) and
OUT.json (the arguments, the versions and the top-1 / top-5 on <data>/val, which `pfq eval` of
the imported weights must reproduce). Needs torch, torchvision and safetensors, e.g.

  /usr/bin/python3 -m venv --system-site-packages venv && venv/bin/pip install safetensors
  venv/bin/python tools/pretrain_torchvision.py DATA OUT.safetensors --arch mobilenet_v2 \
      --width-mult 0.5 --image-size 64 --resize-size 73 --epochs 3 --threads 1
"""
import argparse
import json
import os
import time

import torch
import torchvision
from safetensors.torch import save_file
from torchvision import transforms

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def evaluate(model, loader):
    model.eval()
    top1 = top5 = n = 0
    loss = 0.0
    with torch.no_grad():
        for x, y in loader:
            out = model(x)
            loss += torch.nn.functional.cross_entropy(out, y, reduction="sum").item()
            best = out.topk(5, 1).indices
            top1 += (best[:, 0] == y).sum().item()
            top5 += (best == y[:, None]).any(1).sum().item()
            n += len(y)
    return {"top1": 100.0 * top1 / n, "top5": 100.0 * top5 / n, "loss": loss / n, "images": n}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="image folder with train/ and val/")
    p.add_argument("out", help="safetensors file to write")
    p.add_argument("--arch", default="mobilenet_v2", help="a torchvision.models builder")
    p.add_argument("--width-mult", type=float, default=None, help="mobilenet_v2's width_mult")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--resize-size", type=int, default=73)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=4e-5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    norm = transforms.Normalize(MEAN, STD)
    train_tf = transforms.Compose([transforms.RandomResizedCrop(a.image_size), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor(), norm])
    eval_tf = transforms.Compose([transforms.Resize(a.resize_size), transforms.CenterCrop(a.image_size),
                                  transforms.ToTensor(), norm])
    train = torchvision.datasets.ImageFolder(os.path.join(a.data, "train"), train_tf)
    val = torchvision.datasets.ImageFolder(os.path.join(a.data, "val"), eval_tf)
    kw = {} if a.width_mult is None else {"width_mult": a.width_mult}
    model = getattr(torchvision.models, a.arch)(num_classes=len(train.classes), **kw)
    tl = torch.utils.data.DataLoader(train, batch_size=a.batch_size, shuffle=True, num_workers=0)
    vl = torch.utils.data.DataLoader(val, batch_size=128, num_workers=0)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=a.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs)
    history = []
    for epoch in range(a.epochs):
        model.train()
        t0 = time.time()
        total = 0.0
        steps = 0
        for x, y in tl:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            steps += 1
            if steps % 20 == 0:
                print(f"epoch {epoch + 1} step {steps}/{len(tl)} loss {loss.item():.4f}", flush=True)
        sched.step()
        ev = evaluate(model, vl)
        ev.update(epoch=epoch + 1, train_loss=total / len(train), seconds=round(time.time() - t0, 1))
        history.append(ev)
        print(json.dumps(ev), flush=True)
    tmp = a.out + ".tmp"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, a.out)
    info = {"args": vars(a), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "classes": train.classes, "val": history[-1], "history": history}
    with open(a.out + ".json.tmp", "w") as f:
        json.dump(info, f, indent=2)
    os.replace(a.out + ".json.tmp", a.out + ".json")
    print(f"wrote {a.out}: val top1 {history[-1]['top1']:.2f}% top5 {history[-1]['top5']:.2f}%")


if __name__ == "__main__":
    main()
