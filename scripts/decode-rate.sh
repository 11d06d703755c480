#!/usr/bin/env bash
# Decode success of the scanner's pipeline (rqrr, helped) against zbarimg on
# the same degraded webcam-like frames, printed side by side, with timings.
#   scripts/decode-rate.sh [FRAMES_DIR]
# Without FRAMES_DIR, frames are generated from the test vectors by
# `cargo run --example degrade_frames` (deterministic).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v zbarimg >/dev/null || { echo "zbarimg missing: run scripts/setup-debian.sh" >&2; exit 1; }

cargo build --quiet --release -p jo-scanner --bin jo-scanner --example degrade_frames
frames=${1:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$frames" ]; then
  frames="$work/frames"
  target/release/examples/degrade_frames "$frames" >/dev/null
fi

# Decoding does not depend on the state: an empty one will do (verdicts are
# not counted here, only whether the QR string came out).
target/release/jo-scanner --state "$work/state" verify "$frames"/*.png > "$work/scanner.jsonl"
for f in "$frames"/*.png; do
  printf '%s\t%s\n' "$(basename "$f")" "$(zbarimg --quiet --raw "$f" 2>/dev/null | head -n 1)"
done > "$work/zbar.tsv"

python3 - "$work/scanner.jsonl" "$work/zbar.tsv" <<'PY'
import json, os, sys
scan = {os.path.basename(d["file"]): d for d in map(json.loads, open(sys.argv[1]))}
zbar = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[2]))
print(f"{'frame':28} {'jo-scanner':>12} {'zbarimg':>8}  {'decode ms':>9}  attempt")
ok_s = ok_z = 0
times = []
for name in sorted(scan):
    d = scan[name]
    s = bool(d.get("text"))
    z = bool(zbar.get(name))
    ok_s += s; ok_z += z
    times.append(d["decode_ms"])
    print(f"{name:28} {'read' if s else '-':>12} {'read' if z else '-':>8}  {d['decode_ms']:9.2f}  {d.get('attempt') or ''}")
n = len(scan)
times.sort()
p = lambda q: times[min(len(times) - 1, round((len(times) - 1) * q))]
print(f"\ndecoded: jo-scanner {ok_s}/{n} ({100*ok_s/n:.0f} %), zbarimg {ok_z}/{n} ({100*ok_z/n:.0f} %)")
print(f"jo-scanner decode time per frame: p50 {p(0.5):.1f} ms, p95 {p(0.95):.1f} ms, max {times[-1]:.1f} ms")
PY
