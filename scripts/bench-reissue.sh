#!/usr/bin/env bash
# Re-issue benchmark (release build): re-issues every ticket of a session
# (10,000 by default) through the console's operation on SQLite, and prints
# re-issues/s, the revocation delta's size and a gate's time to verify it.
#   scripts/bench-reissue.sh [TICKETS]
set -euo pipefail
cd "$(dirname "$0")/.."
export JO_BENCH_TICKETS=${1:-10000}
cargo bench --locked -p jo-server --bench reissue --no-run --quiet
cargo bench --locked -p jo-server --bench reissue --quiet
