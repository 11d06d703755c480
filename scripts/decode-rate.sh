#!/usr/bin/env bash
# Decode rate of the scanner's pipeline against zbarimg and zxing-cpp (the
# PyPI package, in a venv under target/) on the same webcam-like frames, per
# kind of frame, with false reads (a string other than the one shown) and the
# median decode time of each.
#   scripts/decode-rate.sh [SEED] [COUNT] [TIER]
# Frames come from `cargo run --example webcam_frames` (fresh tickets signed
# by the shared crate's signer, deterministic for a seed). The default seed is
# the one the pipeline was tuned on; pass another to see held-out figures.
# TIER is `standard` (default) or `hard`: the same tickets, each kind of
# frame pushed further (see synth::Tier).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v zbarimg >/dev/null || { echo "zbarimg missing: run scripts/setup-debian.sh" >&2; exit 1; }
seed=${1:-0x4A4F202450415249}
count=${2:-300}
tier=${3:-standard}
target=${CARGO_TARGET_DIR:-target}

venv=target/zxing-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import zxingcpp, PIL' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet zxing-cpp pillow
fi

cargo build --quiet --release -p jo-scanner --bin jo-scanner --example webcam_frames
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$target/release/examples/webcam_frames" "$work/frames" "$seed" "$count" "$tier" >/dev/null

pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
# Decoding does not depend on the state: an empty one will do (verdicts are
# not counted here, only which string came out of each frame).
"${pin[@]}" "$target/release/jo-scanner" --state "$work/state" verify "$work/frames"/*.png > "$work/scanner.jsonl"

"${pin[@]}" "$venv/bin/python" - "$work/frames" "$work/scanner.jsonl" "$seed" "$tier" <<'PY'
import json, os, subprocess, sys, time
from statistics import median
import zxingcpp
from PIL import Image

frames, scanner_out, seed, tier = sys.argv[1:5]
manifest = [l.rstrip("\n").split("\t") for l in open(os.path.join(frames, "manifest.tsv"))]
scan = {os.path.basename(d["file"]): d for d in map(json.loads, open(scanner_out))}
kinds = []
rows = {}  # kind -> decoder -> [read, false, n, times]
for name, kind, code in manifest:
    if kind not in kinds:
        kinds.append(kind)
    path = os.path.join(frames, name)
    d = scan[name]
    got = {"jo-scanner": ([d["text"]] if d.get("text") else [], d["decode_ms"])}
    t = time.perf_counter()
    z = subprocess.run(["zbarimg", "--quiet", "--raw", path], capture_output=True, text=True, errors="replace")
    got["zbarimg"] = ([l for l in z.stdout.splitlines() if l], (time.perf_counter() - t) * 1e3)
    img = Image.open(path).convert("L")
    t = time.perf_counter()
    res = zxingcpp.read_barcodes(img)
    got["zxing-cpp"] = ([r.text for r in res], (time.perf_counter() - t) * 1e3)
    for dec, (texts, ms) in got.items():
        r = rows.setdefault(kind, {}).setdefault(dec, [0, 0, 0, []])
        r[0] += code in texts
        r[1] += any(x != code for x in texts)
        r[2] += 1
        r[3].append(ms)

decs = ["jo-scanner", "zxing-cpp", "zbarimg"]
print(f"seed {seed}, {tier} tier, {len(manifest)} frames 1280x720 (read % / false reads / median decode ms)")
print(f"{'kind':14}" + "".join(f"{d:>22}" for d in decs))
tot = {d: [0, 0, 0, []] for d in decs}
for k in kinds:
    cells = []
    for d in decs:
        r = rows[k][d]
        for i in range(3):
            tot[d][i] += r[i]
        tot[d][3] += r[3]
        cells.append(f"{100*r[0]/r[2]:5.0f} % {r[1]:3d} {median(r[3]):7.1f}")
    print(f"{k:14}" + "".join(f"{c:>22}" for c in cells))
print(f"{'all':14}" + "".join(
    f"{f'{100*t[0]/t[2]:5.1f} % {t[1]:3d} {median(t[3]):7.1f}':>22}" for t in (tot[d] for d in decs)))
print("(zbarimg's time includes starting the process; jo-scanner's is its decode_ms, one core)")
PY
