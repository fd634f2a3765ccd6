#!/usr/bin/env python3
# qat_figures.py — draws the three figures of docs/qat.md as SVG into docs/img/qat/, from the
# formulas pfq implements (quant/fake_quant_kernel.h: symmetric narrow-range grid, round half to
# even; quant/bn_fold.cpp: s = gamma / sqrt(var + eps)). Plain Python, no packages; seeded, so
# the files are the same on every run. Usage: tools/qat_figures.py
import math
import os
import random

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "img", "qat")
W, H, M = 420, 260, 40  # size and margin in px


def fake_quant(x, bits, max_abs):  # pfq's fake_quant_one with a symmetric range [-max_abs, max_abs]
    qmax = 2 ** (bits - 1) - 1
    s = max_abs / qmax
    q = min(max(round(x / s), -qmax), qmax)  # Python's round: half to even, as std::nearbyint
    return q * s


class Svg:
    def __init__(self, title, x0, x1, y0, y1, axes=True):
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1
        self.parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" '
                      f'font-size="11"><rect width="{W}" height="{H}" fill="white"/>',
                      f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{title}</text>']
        if axes:
            self.line([(x0, 0), (x1, 0)], "#999")
            self.line([(0, y0), (0, y1)], "#999")

    def px(self, x, y):
        return (M + (x - self.x0) / (self.x1 - self.x0) * (W - 2 * M),
                H - M - (y - self.y0) / (self.y1 - self.y0) * (H - 2 * M))

    def line(self, pts, color, width=1.5, dash=""):
        d = " ".join(f"{a:.1f},{b:.1f}" for a, b in (self.px(x, y) for x, y in pts))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="{width}"{extra}/>')

    def text(self, x, y, s, color="black", anchor="start"):
        a, b = self.px(x, y)
        self.parts.append(f'<text x="{a:.1f}" y="{b:.1f}" fill="{color}" text-anchor="{anchor}">{s}</text>')

    def write(self, name):
        os.makedirs(OUT, exist_ok=True)
        tmp = os.path.join(OUT, name + ".tmp")
        with open(tmp, "w") as f:
            f.write("\n".join(self.parts + ["</svg>"]) + "\n")
        os.replace(tmp, os.path.join(OUT, name))  # atomic


def staircase():
    s = Svg("3-bit fake quantization, range [-1, 1], step 1/3", -1.5, 1.5, -1.5, 1.5)
    xs = [i / 1000 * 3 - 1.5 for i in range(1001)]
    s.line([(x, x) for x in xs], "#aaa", 1, "4,3")
    s.line([(x, fake_quant(x, 3, 1.0)) for x in xs], "#1f77b4")
    s.text(-1.45, 1.3, "q(x) = clamp(round(x / s), -3, 3) * s", "#1f77b4")
    s.text(0.55, 1.05, "x", "#888")
    s.write("fake-quant.svg")


def ste():
    s = Svg("Gradient of q(x): true vs straight-through", -1.5, 1.5, -0.2, 1.3)
    s.line([(-1.5, 0), (1.5, 0)], "#d62728", 2.5)
    s.line([(-1.5, 0), (-1.0, 0), (-1.0, 1), (1.0, 1), (1.0, 0), (1.5, 0)], "#1f77b4")
    s.text(-1.45, 1.1, "straight-through: 1 inside the range, 0 where clamped", "#1f77b4")
    s.text(-1.45, 0.08, "true derivative: 0 (infinite at the steps)", "#d62728")
    s.write("ste.svg")


def bn_fold():
    # A depthwise layer of 16 channels: gamma ~ U(0.5, 1.5), running_var ~ U(0.5, 2), weights
    # ~ N(0, 0.3); channel 5's input is dead after ReLU, so its running variance is 0.
    rng = random.Random(5)
    eps = 1e-5
    folded = []
    for c in range(16):
        gamma, var = rng.uniform(0.5, 1.5), (0.0 if c == 5 else rng.uniform(0.5, 2.0))
        w = max(abs(rng.gauss(0, 0.3)) for _ in range(9))
        folded.append(gamma / math.sqrt(var + eps) * w)
    top = max(folded)
    s = Svg("max |gamma w / sqrt(var + eps)| per channel, log scale", -0.5, 15.5,
            math.log10(0.05), math.log10(top * 3), axes=False)
    for c, v in enumerate(folded):
        s.line([(c, math.log10(0.05)), (c, math.log10(v))], "#d62728" if c == 5 else "#1f77b4", 12)
    step_all, step_rest = top / 7, max(v for c, v in enumerate(folded) if c != 5) / 7
    s.line([(-0.5, math.log10(step_all)), (15.5, math.log10(step_all))], "#d62728", 1, "4,3")
    s.line([(-0.5, math.log10(step_rest)), (15.5, math.log10(step_rest))], "#1f77b4", 1, "4,3")
    s.text(5.4, math.log10(folded[5]), f"channel 5: var = 0, range {folded[5]:.0f}", "#d62728")
    s.text(6.5, math.log10(step_all) + 0.12, f"4-bit step with it: {step_all:.1f}", "#d62728")
    s.text(6.5, math.log10(step_rest) + 0.12, f"without it (PfQ): {step_rest:.2f}", "#1f77b4")
    s.write("bn-fold.svg")


if __name__ == "__main__":
    staircase()
    ste()
    bn_fold()
    print("wrote fake-quant.svg, ste.svg, bn-fold.svg in", os.path.normpath(OUT))
