#!/usr/bin/env bash
# Sync API benchmark (release build): seeds a store with 1,000,000 tickets
# and a 100,000-entry revocation list, runs a real server on port 0, and
# prints the upload, revocation-delta and full down-sync figures.
#   scripts/bench-sync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --locked -p jo-server --bench sync
