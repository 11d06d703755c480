#!/usr/bin/env bash
# Sync API benchmark (release build): seeds a store with tickets, earlier
# scans and a 100,000-entry revocation list, runs a real server on port 0,
# and prints the upload, revocation-delta and full down-sync figures.
#   scripts/bench-sync.sh [--backend sqlite|postgres|all] [TICKETS] [SCANS]
#   sqlite    1,000,000 tickets by default, seeded in one transaction
#   postgres  12,000,000 tickets by default (about what Paris 2024 issued),
#             seeded by COPY; JO_BENCH_DATABASE_URL names a server, else a
#             throwaway PostgreSQL cluster is started and removed
#   all       both (the default)
# SCANS defaults to 1,000,000 on both.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
bench_backend "$@"
set -- "${rest[@]}"
export JO_BENCH_SCANS=${2:-1000000}
cargo bench --locked -p jo-server --bench sync --no-run --quiet
run() { cargo bench --locked -p jo-server --bench sync --quiet; }
if [[ $backend != postgres ]]; then
    JO_BENCH_DATABASE= JO_BENCH_TICKETS=${1:-1000000} run
fi
if [[ $backend != sqlite ]]; then
    bench_pg
    JO_BENCH_DATABASE="$pg_url" JO_BENCH_TICKETS=${1:-12000000} run
fi
