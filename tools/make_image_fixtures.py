#!/usr/bin/python3
"""make_image_fixtures.py — writes tests/fixtures/images/: small images of the sizes and modes
ImageNet folders hold (baseline, grayscale, CMYK and progressive JPEGs; RGB, RGBA, palette and
16-bit PNGs) and what PIL / torchvision make of them, for tests/data/test_eval_protocol.cpp:

  <name>.decoded.bin   PIL's full-size decode after convert("RGB") (libjpeg-turbo for JPEGs),
                       uint8 CHW — pfq's decoder must equal it (16-bit grey: the high byte, as
                       pfq decodes it; PIL clips it instead)
  <name>.half.bin      JPEGs only: PIL's draft-mode decode at DCT scale 1/2 (libjpeg-turbo's
                       scaled IDCT), uint8 CHW — pfq's scaled decode must equal it
  <name>.eval<R>-<C>.bin  torchvision's eval transform Resize(R) (PIL bilinear, antialiased),
                       CenterCrop(C), ToTensor, before Normalize, times 255: uint8 CHW
  manifest.json        every image with its mode, size and the files above

Run with Debian's python (python3-torch, python3-torchvision, python3-pil, python3-numpy):
  /usr/bin/python3 tools/make_image_fixtures.py [OUT]   (default: tests/fixtures/images)
Seeded: the same library versions write the same bytes. Recorded in manifest.json.
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision import transforms

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "images")
rng = np.random.default_rng(26)


def picture(h, w):
    """h x w x 3 uint8: smooth colour fields plus edges and fine texture (what resizing filters see)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(x / (7 + 5 * c) + y / (11 + 3 * c) + c) for c in range(3)], axis=2)
    img += 40.0 * ((x // 9 + y // 13) % 2)[..., None]  # hard edges
    img += rng.normal(0, 12, (h, w, 3))
    return np.uint8(np.clip(img, 0, 255))


def save_png16(path, arr16):
    """A 16-bit PNG (RGB when arr16 is h x w x 3, grey when h x w) written by hand: PIL cannot."""
    h, w = arr16.shape[:2]
    colour = 2 if arr16.ndim == 3 else 0
    raw = b"".join(b"\x00" + arr16[r].astype(">u2").tobytes() for r in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def chw(img_rgb):
    return np.ascontiguousarray(np.asarray(img_rgb, np.uint8).transpose(2, 0, 1))


def write_bin(name, arr):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(arr.tobytes())
    return name


def main():
    os.makedirs(OUT, exist_ok=True)
    entries = []
    protocols = [(64, 56)]

    def add(name, mode_note, protocols_here=None, decoded=True, reference=None):
        """reference: pfq's expected decode when it differs from PIL's on purpose (no eval then)."""
        path = os.path.join(OUT, name)
        with Image.open(path) as im:
            src_mode = im.mode
            rgb = im.convert("RGB")  # torchvision's pil_loader
        e = {"file": name, "mode": mode_note, "pil_mode": src_mode, "height": rgb.height, "width": rgb.width, "eval": []}
        if reference is not None:
            e["decoded"] = write_bin(name + ".decoded.bin", reference)
            entries.append(e)
            return
        if decoded:
            e["decoded"] = write_bin(name + ".decoded.bin", chw(rgb))
        if name.endswith(".jpg") and decoded:
            with Image.open(path) as im:
                im.draft(im.mode, (im.width // 2, im.height // 2))  # DCT scale 1/2
                half = im.convert("RGB")
            e["half"] = write_bin(name + ".half.bin", chw(half))
            e["half_height"], e["half_width"] = half.height, half.width
        for r, c in protocols_here or protocols:
            t = transforms.Compose([transforms.Resize(r), transforms.CenterCrop(c), transforms.ToTensor()])
            with Image.open(path) as im:
                out = t(im.convert("RGB"))
            u8 = torch.round(out * 255).to(torch.uint8).numpy()
            e["eval"].append({"resize": r, "crop": c, "file": write_bin("%s.eval%d-%d.bin" % (name, r, c), u8)})
        entries.append(e)

    Image.fromarray(picture(113, 150)).save(os.path.join(OUT, "rgb420.jpg"), quality=90, subsampling=2)
    add("rgb420.jpg", "baseline JPEG, 4:2:0")
    Image.fromarray(picture(300, 260)).save(os.path.join(OUT, "rgb444_big.jpg"), quality=85, subsampling=0)
    add("rgb444_big.jpg", "baseline JPEG, 4:4:4; ImageNet's Resize(256) / CenterCrop(224) too", [(64, 56), (256, 224)],
        decoded=False)  # decoded / half: the small JPEGs cover them
    Image.fromarray(picture(130, 97)[..., 1]).save(os.path.join(OUT, "gray.jpg"), quality=90)
    add("gray.jpg", "grayscale JPEG")
    # CMYK with a varying black channel (convert("CMYK") would leave K = 0, where any formula agrees)
    y, x = np.mgrid[0:90, 0:121]
    cmy = 255 - picture(90, 121)
    k = np.uint8((x * 3 + y * 2) % 200)[..., None]
    Image.fromarray(np.concatenate([cmy, k], axis=2), "CMYK").save(os.path.join(OUT, "cmyk.jpg"), quality=90)
    add("cmyk.jpg", "CMYK JPEG (Adobe, inverted)")
    Image.fromarray(picture(100, 140)).save(os.path.join(OUT, "progressive.jpg"), quality=90, progressive=True)
    add("progressive.jpg", "progressive JPEG, 4:2:0")
    Image.fromarray(picture(120, 80)).save(os.path.join(OUT, "rgb.png"))
    add("rgb.png", "8-bit RGB PNG")
    rgba = np.concatenate([picture(70, 90), rng.integers(0, 256, (70, 90, 1), dtype=np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "rgba.png"))
    add("rgba.png", "RGBA PNG (alpha dropped, not composited)")
    Image.fromarray(picture(66, 72)).quantize(64).save(os.path.join(OUT, "palette.png"))
    add("palette.png", "palette PNG")
    p16 = picture(90, 70).astype(np.uint16) * 257 + rng.integers(0, 257, (90, 70, 3)).astype(np.uint16)
    save_png16(os.path.join(OUT, "rgb16.png"), p16)
    add("rgb16.png", "16-bit RGB PNG (PIL keeps the high byte)")
    g16 = p16[..., 0]
    save_png16(os.path.join(OUT, "gray16.png"), g16)
    # PIL reads 16-bit grey as mode I and convert("RGB") clips it at 255 (nearly all white); pfq
    # keeps the high byte, as PIL does for 16-bit RGB: the reference is that, and no eval output.
    add("gray16.png", "16-bit grey PNG (pfq: high byte; PIL clips mode I at 255)",
        reference=np.ascontiguousarray(np.repeat((g16 >> 8).astype(np.uint8)[None], 3, axis=0)))

    manifest = {"generator": "tools/make_image_fixtures.py", "pillow": PIL.__version__, "torch": torch.__version__,
                "torchvision": torchvision.__version__, "images": entries}
    tmp = os.path.join(OUT, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(OUT, "manifest.json"))
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("make_image_fixtures.py: %d images, %d files, %.0f KB in %s" % (len(entries), len(os.listdir(OUT)), total / 1024, OUT))


if __name__ == "__main__":
    main()
