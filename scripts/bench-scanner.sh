#!/usr/bin/env bash
# Scanner benchmark: frame-to-verdict time of `jo-scanner replay` on 1280x720
# webcam-like frames, pinned to one core, the decode-rate comparison with
# zbarimg on the same frames, and the gate's memory with 1 M revocations.
#   scripts/bench-scanner.sh
# Every frame here is a different degraded ticket seen for the first time, the
# worst case: at a gate a held ticket is re-read in its remembered region.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release -p jo-scanner --bin jo-scanner --example degrade_frames --example revocation_memory
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/examples/degrade_frames "$work/frames" >/dev/null
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)
"${pin[@]}" target/release/jo-scanner --state "$work/state" replay --frames "$work/frames" > "$work/replay.jsonl"
python3 - "$work/replay.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
s = lines[-1]["summary"]
print(f"replay of {s['frames']} frames (1280x720, one core): decoded {s['decoded']}, "
      f"frame-to-verdict p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms, max {s['max_ms']:.1f} ms "
      f"(target p95 <= 30 ms: {'met' if s['p95_ms'] <= 30 else 'NOT met'})")
PY
scripts/decode-rate.sh "$work/frames" | tail -2
# Memory and load time of the gate with 1 M revocations synced.
target/release/examples/revocation_memory 1000000
