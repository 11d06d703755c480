#!/usr/bin/env bash
# Gates that know about each other (release build): for 2, 10 and 50
# headless gates (`jo-scanner gate`, ticket strings instead of frames),
# the time from an admission at one gate to the entry being installed at
# every other gate (its refusal ready), p50 and p95, online through a real
# `jo-server serve` (each gate holding a long-poll on the entries feed) and
# over LAN peers on 127.0.0.1 with the server stopped; and the server's
# memory and CPU with the long-polls held open.
#   scripts/bench-gates.sh [GATES...]     (default: 2 10 50 200; the LAN up to 50)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --quiet -p jo-server -p jo-scanner
cargo build --locked --release --quiet -p jo-scanner --example bench_gates
target="${CARGO_TARGET_DIR:-target}"
# Every gate is a process with a thread per peer: 50 gates hold ~2,500
# threads and ~2,500 sockets on this one machine.
ulimit -n 65536 2>/dev/null || true
JO_SERVER_BIN="$target/release/jo-server" JO_SCANNER_BIN="$target/release/jo-scanner" \
    "$target/release/examples/bench_gates" "$@"
