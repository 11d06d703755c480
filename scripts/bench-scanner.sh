#!/usr/bin/env bash
# Scanner benchmark, pinned to one core: frame-to-verdict time of
# `jo-scanner replay` on the seeded 1280x720 webcam set (the same generator
# and kinds as scripts/decode-rate.sh), time to first read of tickets
# presented to the camera (the presentations replay, 30 fps), and the gate's
# memory with 1 M revocations.
#   scripts/bench-scanner.sh [SEED] [COUNT] [TIER]
# Every replayed frame is a different ticket seen for the first time, the
# worst case: at a gate a held ticket is re-read in its remembered region.
# TIER is `standard` (default) or `hard` (see the README's decode figures).
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-0x4A4F202450415249}
count=${2:-300}
tier=${3:-standard}
target=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release -p jo-scanner --bin jo-scanner \
  --example webcam_frames --example presentations --example revocation_memory
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$target/release/examples/webcam_frames" "$work/frames" "$seed" "$count" "$tier" >/dev/null
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
"${pin[@]}" "$target/release/jo-scanner" --state "$work/state" replay --frames "$work/frames" > "$work/replay.jsonl"
python3 - "$work/replay.jsonl" "$seed" "$tier" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
s = lines[-1]["summary"]
print(f"replay of {s['frames']} webcam frames (seed {sys.argv[2]}, {sys.argv[3]} tier, 1280x720, one core): "
      f"decoded {s['decoded']}, frame-to-verdict p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms, "
      f"max {s['max_ms']:.1f} ms (target p95 <= 30 ms: {'met' if s['p95_ms'] <= 30 else 'NOT met'})")
PY
# Time to first read: a phone coming to rest in front of the camera.
"${pin[@]}" "$target/release/examples/presentations" 200 "$seed"
# Memory and load time of the gate with 1 M revocations synced.
"$target/release/examples/revocation_memory" 1000000
