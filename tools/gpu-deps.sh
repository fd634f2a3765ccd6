#!/usr/bin/env bash
# gpu-deps.sh — copies the build dependencies that the GPU machine lacks (Eigen, doctest, stb,
# CLI11, nlohmann-json headers; static libstb.a and zlib; Fashion-MNIST when installed) from this
# Debian machine into the git-ignored third_party/, with pkg-config .pc files pointing at them, so the tree travels:
#   PKG_CONFIG_LIBDIR=$PWD/third_party/pkgconfig meson setup build-gpu   (on the GPU machine)
# Where that machine has no pkg-config binary, add PKG_CONFIG=$PWD/third_party/bin/pkg-config.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tp="$root/third_party"
multi=/usr/lib/x86_64-linux-gnu
need() { [ -e "$1" ] || { echo "gpu-deps.sh: $1 missing: run tools/setup-debian.sh first" >&2; exit 1; }; }
for f in /usr/include/eigen3/Eigen /usr/include/doctest/doctest.h /usr/include/stb/stb_image.h \
         /usr/include/CLI/CLI.hpp /usr/include/nlohmann/json.hpp /usr/include/zlib.h \
         "$multi/libstb.a" "$multi/libz.a"; do
  need "$f"
done

rm -rf "$tp"
mkdir -p "$tp/include" "$tp/lib" "$tp/pkgconfig" "$tp/bin"
cp -r /usr/include/eigen3 "$tp/include/eigen3"
cp -r /usr/include/doctest /usr/include/stb /usr/include/CLI /usr/include/nlohmann "$tp/include/"
cp /usr/include/zlib.h /usr/include/zconf.h "$tp/include/"
cp "$multi/libstb.a" "$multi/libz.a" "$tp/lib/"  # static and PIC: no runtime dependency
# The default dataset, so the GPU check can run `pfq workflow` there (Debian's dataset-fashion-mnist).
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/train-images-idx3-ubyte.gz" ] && cp -r "$fm" "$tp/fashion-mnist"

# pc NAME VERSION CFLAGS [LIBS] — ${pcfiledir} keeps the files valid wherever the tree lands.
pc() {
  cat > "$tp/pkgconfig/$1.pc" <<PC
prefix=\${pcfiledir}/..
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: $1
Description: $1 (copied by tools/gpu-deps.sh)
Version: $2
Cflags: $3
Libs: ${4:-}
PC
}
pc eigen3 "$(pkg-config --modversion eigen3)" '-I${includedir}/eigen3'
pc doctest "$(dpkg-query -W -f='${Version}' doctest-dev | sed 's/[-~+].*//')" '-I${includedir}'
pc stb "$(pkg-config --modversion stb)" '-I${includedir}/stb' '-L${libdir} -lstb'
pc CLI11 "$(pkg-config --modversion CLI11)" '-I${includedir}'
pc nlohmann_json "$(pkg-config --modversion nlohmann_json)" '-I${includedir}'
pc zlib "$(pkg-config --modversion zlib)" '-I${includedir}' '-L${libdir} -lz'

# A minimal pkg-config (the subset Meson uses) for machines without one.
cat > "$tp/bin/pkg-config" <<'PY'
#!/usr/bin/env python3
"""Minimal pkg-config for third_party/pkgconfig: --version, --exists, --modversion, --cflags,
--libs, --variable=NAME; reads PKG_CONFIG_LIBDIR/PKG_CONFIG_PATH or this folder's ../pkgconfig."""
import os, re, sys
here = os.path.dirname(os.path.abspath(__file__))
dirs = [d for v in ("PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR") for d in os.environ.get(v, "").split(":") if d]
dirs.append(os.path.join(here, "..", "pkgconfig"))
def load(name):
    for d in dirs:
        path = os.path.join(d, name + ".pc")
        if os.path.isfile(path):
            var, fld = {"pcfiledir": os.path.dirname(os.path.abspath(path))}, {}
            sub = lambda s: re.sub(r"\$\{(\w+)\}", lambda m: var.get(m.group(1), ""), s)
            for line in open(path):
                line = line.strip()
                if m := re.match(r"^(\w+)=(.*)$", line): var[m.group(1)] = sub(m.group(2))
                elif m := re.match(r"^([\w.]+):\s*(.*)$", line): fld[m.group(1)] = sub(m.group(2))
            return var, fld
    return None
args = [a for a in sys.argv[1:] if a.startswith("--")]
names = [a for a in sys.argv[1:] if not a.startswith("--")]
if "--version" in args: print("0.29.2"); sys.exit(0)
out = []
for n in names:
    pc = load(n)
    if pc is None:
        print(f"Package {n} was not found in the pkg-config search path.", file=sys.stderr); sys.exit(1)
    var, fld = pc
    for a in args:
        if a == "--modversion": out.append(fld.get("Version", ""))
        elif a == "--cflags": out.append(fld.get("Cflags", ""))
        elif a == "--libs": out.append(fld.get("Libs", ""))
        elif a.startswith("--variable="): out.append(var.get(a.split("=", 1)[1], ""))
print(" ".join(o for o in out if o).strip() if out else "", end="\n" if out else "")
PY
chmod +x "$tp/bin/pkg-config"
echo "gpu-deps.sh: $(du -sh "$tp" | cut -f1) in $tp"
