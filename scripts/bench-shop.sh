#!/usr/bin/env bash
# Shop benchmark: end-to-end checkouts per second (cart, order with seat
# hold, simulated payment, ticket signing, QR), p99 latency of the session
# list at a fixed request rate, PDF generation time per ticket.
# Usage: scripts/bench-shop.sh [seconds] [buyers] [list req/s]
# The server runs in-process (release build) on a temporary data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
export JO_BENCH_SECS=${1:-10}
export JO_BENCH_BUYERS=${2:-32}
export JO_BENCH_RATE=${3:-1000}
echo "== shop benchmark: ${JO_BENCH_SECS}s per phase, ${JO_BENCH_BUYERS} buyers, list at ${JO_BENCH_RATE} req/s, $(nproc) cores"
RUST_LOG=${RUST_LOG:-error} cargo bench -p jo-server --bench shop --quiet 2>/dev/null
