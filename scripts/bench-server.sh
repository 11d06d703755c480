#!/usr/bin/env bash
# Server benchmark: argon2id cost, home-page throughput and p99 latency, RSS.
# Usage: scripts/bench-server.sh [seconds] [connections]
# Builds in release mode; runs the server as its own process (to measure its
# RSS) on a temporary data dir; uses oha if installed, else the bundled Rust
# load generator (server/benches/load.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${2:-16}

echo "== build (release)"
cargo build --release -p jo-server --bins --benches --quiet
cargo bench -p jo-server --bench argon2 --no-run --quiet 2>/dev/null || true

echo "== argon2id"
cargo bench -p jo-server --bench argon2 --quiet 2>/dev/null | grep argon2id

DATA=$(mktemp -d)
PORT=$(scripts/free-ports)
RUST_LOG=warn ./target/release/jo-server serve --data "$DATA/data" --bind "127.0.0.1:$PORT" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
echo "== server RSS at idle: $(rss_kib) KiB"

PEAK=0
( while kill -0 "$PID" 2>/dev/null; do r=$(rss_kib); echo "$r"; sleep 0.2; done ) > "$DATA/rss.log" &
SAMPLER=$!

echo "== load: GET / for ${SECS}s, ${CONNS} connections, $(nproc) cores"
if command -v oha >/dev/null; then
  oha -z "${SECS}s" -c "$CONNS" --no-tui "http://127.0.0.1:$PORT/" | grep -E "Requests/sec|99.00%|Success rate"
else
  JO_BENCH_URL="http://127.0.0.1:$PORT/" JO_BENCH_SECS="$SECS" JO_BENCH_CONNECTIONS="$CONNS" \
    cargo bench -p jo-server --bench load --quiet 2>/dev/null | grep "req/s"
fi

# The same page for a logged-in user: a session lookup in SQLite per request.
EMAIL=bench@example.com
PASSWORD='Bench-Password-Seine-2024'
echo "$PASSWORD" | ./target/release/jo-server create-admin --data "$DATA/data" --email "$EMAIL" --username bench >/dev/null
JAR="$DATA/cookies.txt"
TOKEN=$(curl -fs -c "$JAR" "http://127.0.0.1:$PORT/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
curl -fs -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "email=$EMAIL" --data-urlencode "password=$PASSWORD" \
  --data-urlencode "csrf=$TOKEN" "http://127.0.0.1:$PORT/login"
SESSION=$(awk '$6 == "jo_session" {print $7}' "$JAR")
[ -n "$SESSION" ] || { echo "bench: login failed, no session cookie" >&2; exit 1; }
echo "== load: GET / logged in (session lookup in SQLite) for ${SECS}s, ${CONNS} connections"
if command -v oha >/dev/null; then
  oha -z "${SECS}s" -c "$CONNS" --no-tui -H "Cookie: jo_session=$SESSION" "http://127.0.0.1:$PORT/" | grep -E "Requests/sec|99.00%|Success rate"
else
  JO_BENCH_URL="http://127.0.0.1:$PORT/" JO_BENCH_SECS="$SECS" JO_BENCH_CONNECTIONS="$CONNS" JO_BENCH_COOKIE="jo_session=$SESSION" \
    cargo bench -p jo-server --bench load --quiet 2>/dev/null | grep "req/s"
fi

kill "$SAMPLER" 2>/dev/null || true
PEAK=$(sort -n "$DATA/rss.log" | tail -1)
echo "== server RSS under load: peak ${PEAK} KiB; after: $(rss_kib) KiB"
