#!/usr/bin/env bash
# Shop benchmark: end-to-end checkouts per second (cart, order with seat
# hold, simulated payment, ticket signing, QR, confirmation mail over SMTP),
# p99 latency of the session list at a fixed request rate, PDF generation
# time per ticket.
# Usage: scripts/bench-shop.sh [--backend sqlite|postgres|all] [seconds] [buyers] [list req/s]
#   sqlite    one node on a SQLite file (every phase)
#   postgres  one node, then two nodes, on one PostgreSQL database
#             (checkouts; JO_BENCH_DATABASE_URL names a server, else a
#             throwaway PostgreSQL cluster is started and removed)
#   all       both, in one run (the default)
# The server runs in-process (release build) on a temporary data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
bench_backend "$@"
set -- "${rest[@]}"
export JO_BENCH_SECS=${1:-10}
export JO_BENCH_BUYERS=${2:-32}
export JO_BENCH_RATE=${3:-1000}
echo "== shop benchmark: ${JO_BENCH_SECS}s per phase, ${JO_BENCH_BUYERS} buyers, list at ${JO_BENCH_RATE} req/s, $(nproc) cores"
cargo bench -p jo-server --bench shop --no-run --quiet
run() { RUST_LOG=${RUST_LOG:-error} cargo bench -p jo-server --bench shop --quiet; }

if [[ $backend != postgres ]]; then
    JO_BENCH_DATABASE= JO_BENCH_NODES=1 run
fi
if [[ $backend != sqlite ]]; then
    bench_pg
    for nodes in 1 2; do
        JO_BENCH_DATABASE="$pg_url" JO_BENCH_NODES=$nodes JO_BENCH_PHASES=checkout run
    done
fi
