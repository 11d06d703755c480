#!/usr/bin/env bash
# Admin console benchmark: seeds a store of TICKETS tickets and SCANS scans
# in a temporary directory, starts the server on it (release build), logs an
# admin in with 2FA and prints how long the dashboard and the scans view
# take to answer (target: 1 s or less).
#   scripts/bench-admin.sh [--backend sqlite|postgres|all] [TICKETS] [SCANS]
#   sqlite    1,000,000 tickets and 1,000,000 scans by default
#   postgres  12,000,000 tickets and 1,000,000 scans by default, seeded by
#             COPY; JO_BENCH_DATABASE_URL names a server, else a throwaway
#             PostgreSQL cluster is started and removed (prints the size)
#   all       both (the default)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
bench_backend "$@"
set -- "${rest[@]}"
cargo build --release --locked --quiet -p jo-server --example bench_admin
run() { "${CARGO_TARGET_DIR:-target}"/release/examples/bench_admin "$@"; }
if [[ $backend != postgres ]]; then
    JO_BENCH_DATABASE= run "${1:-1000000}" "${2:-1000000}"
fi
if [[ $backend != sqlite ]]; then
    bench_pg
    JO_BENCH_DATABASE="$pg_url" run "${1:-12000000}" "${2:-1000000}"
fi
