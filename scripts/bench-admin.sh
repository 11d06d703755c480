#!/bin/sh
# Admin console benchmark: seeds a store of TICKETS tickets and SCANS scans
# (default 1 000 000 each) in a temporary directory, starts the server on it
# (release build), logs an admin in with 2FA and prints how long the
# dashboard and the scans view take to answer (target: 1 s or less).
#
#   scripts/bench-admin.sh [TICKETS] [SCANS]
set -eu
cd "$(dirname "$0")/.."
exec cargo run --release --quiet -p jo-server --example bench_admin -- "${1:-1000000}" "${2:-1000000}"
