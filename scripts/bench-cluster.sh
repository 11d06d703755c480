#!/usr/bin/env bash
# The cost of the proxy and of TLS: the home page (req/s, p99) and completed
# checkouts per second, straight to a node over http and through nginx
# (deploy/nginx/jo.conf) over TLS, with one node and with two on one
# throwaway PostgreSQL; the same Python client (scripts/cluster-load.py)
# drives every case, so the difference is the proxy's. Then the direct,
# in-process figures of scripts/bench-shop.sh for reference.
#   scripts/bench-cluster.sh [seconds] [buyers] [home clients]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
buyers=${2:-16}
clients=${3:-8}
target=${CARGO_TARGET_DIR:-target}
echo "== build (release)"
cargo build --release --locked -p jo-server --bin jo-server --quiet
server="$target/release/jo-server"
[[ "$server" = /* ]] || server="$PWD/$server"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jo-bench-cluster.XXXXXX")
chmod 755 "$tmp"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    scripts/pg-throwaway.sh stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

pgurl=$(scripts/pg-throwaway.sh start "$tmp/pg")
sql() { psql "$pgurl" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }
"$server" keygen --keys "$tmp/keys" >/dev/null
deploy/make-test-ca.sh "$tmp/tls" localhost >/dev/null
read -r https_port http_port p1 p2 < <(scripts/free-ports 4)
base="https://localhost:$https_port"
mkdir -m 700 "$tmp/n1" "$tmp/n2"
head -c 32 /dev/urandom >"$tmp/n1/totp.key"
chmod 600 "$tmp/n1/totp.key"
cp -p "$tmp/n1/totp.key" "$tmp/n2/totp.key"
for n in 1 2; do
    port=$p1
    [[ $n == 2 ]] && port=$p2
    # The bench's buyers buy far more of one session than a person may.
    JO_DATABASE_URL="$pgurl" JO_KEYS_DIR="$tmp/keys" JO_DATA_DIR="$tmp/n$n" JO_BIND="127.0.0.1:$port" \
        JO_PUBLIC_URL="$base" JO_TRUSTED_PROXIES=127.0.0.1 RUST_LOG=error JO_MAX_TICKETS_PER_SESSION=1000000 \
        "$server" serve >>"$tmp/n$n.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 150); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
done

# nginx with one node, then with both (the config's own directives).
nginx_conf() {
    local second=$1
    mkdir -p "$tmp/nginx/cache" "$tmp/nginx/temp"
    sed -e "s|server jo1:8080 |server 127.0.0.1:$p1 |" \
        -e "s|server jo2:8080 |server 127.0.0.1:$second |" \
        -e "s|listen 80;|listen 127.0.0.1:$http_port;|" \
        -e "s|listen 443 ssl http2;|listen 127.0.0.1:$https_port ssl http2;|" \
        -e "s|/etc/nginx/tls/|$tmp/tls/|" -e "s|/var/cache/nginx/jo|$tmp/nginx/cache|" \
        deploy/nginx/jo.conf >"$tmp/nginx/jo.conf"
    local user_line=""
    [[ "$(id -u)" -eq 0 ]] && user_line="user root root;"
    cat >"$tmp/nginx/nginx.conf" <<CONF
$user_line
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log error;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/temp/body;
    proxy_temp_path $tmp/nginx/temp/proxy;
    fastcgi_temp_path $tmp/nginx/temp/fastcgi;
    uwsgi_temp_path $tmp/nginx/temp/uwsgi;
    scgi_temp_path $tmp/nginx/temp/scgi;
    include $tmp/nginx/jo.conf;
}
CONF
}
start_nginx() {
    nginx_conf "$1"
    nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -g 'daemon off;' &
    nginx_pid=$!
    pids+=($nginx_pid)
    for _ in $(seq 50); do curl -fs --cacert "$tmp/tls/ca.crt" "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
}
stop_nginx() { kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true; }

# Buyers: one account registered through the shop (verified in SQL: the
# benchmark needs no mail), copied with its password hash.
password='Quatre-chevaux-Seine-2024!'
jar="$tmp/jar"
token=$(curl -sS -c "$jar" -b "$jar" "http://127.0.0.1:$p1/register" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
curl -sS -o /dev/null -c "$jar" -b "$jar" "http://127.0.0.1:$p1/register" --data-urlencode "csrf=$token" \
    -d username=bench -d email=bench@example.com -d first_name=Marie -d last_name=Curie \
    --data-urlencode "password=$password" --data-urlencode "password_confirm=$password"
sql "UPDATE users SET email_verified_at = 1 WHERE email = 'bench@example.com'" >/dev/null
sql "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key, role, email_verified_at, created_at)
     SELECT 'b' || g, 'b' || g || '@example.com', 'Jean', 'Dupont', u.password_hash,
            decode(md5(random()::text) || md5(random()::text), 'hex'), 'buyer', 1, 1
     FROM users u, generate_series(0, $buyers - 1) g WHERE u.email = 'bench@example.com'" >/dev/null
sid=$(sql "SELECT id FROM game_sessions WHERE code = 'ATH01'")
solo=$(sql "SELECT id FROM offers WHERE name = 'Solo'")
sql "UPDATE game_sessions SET capacity = 100000000 WHERE id = $sid" >/dev/null
export JO_LOAD_PASSWORD="$password"

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
home() {
    python3 scripts/cluster-load.py --base "$1" --ca "$tmp/tls/ca.crt" home --seconds "$secs" --clients "$clients"
}
checkouts() {
    rm -f "$tmp/stop" "$tmp/ready"
    python3 scripts/cluster-load.py --base "$1" --ca "$tmp/tls/ca.crt" load --users "$buyers" --prefix b \
        --session "$sid" --offer "$solo" --until "$tmp/stop" --ready "$tmp/ready" >"$tmp/load.json" &
    local pid=$!
    # Timed from the moment every buyer is logged in.
    while [[ ! -e "$tmp/ready" ]] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    sleep "$secs"
    touch "$tmp/stop"
    wait "$pid" || true
    python3 -c '
import json, sys
r = json.load(sys.stdin)
print("{:.1f} checkouts/s ({} in {} s, {} failed requests)".format(
    r["purchases"] / r["seconds"], r["purchases"], r["seconds"], r["failed"]))' <"$tmp/load.json"
}
row() {
    local label=$1 url=$2
    local h
    h=$(home "$url")
    printf '%-34s home %7s req/s  p99 %6s ms   %s\n' "$label" \
        "$(field req_per_s <<<"$h")" "$(field p99_ms <<<"$h")" "$(checkouts "$url")"
}

echo "== cluster benchmark: ${secs}s per case, $buyers buyers, $clients home clients, $(nproc) cores, PostgreSQL"
row "direct, 1 node, http" "http://127.0.0.1:$p1"
start_nginx "$p1"
row "nginx TLS, 1 node" "$base"
stop_nginx
start_nginx "$p2"
row "nginx TLS, 2 nodes" "$base"
stop_nginx
echo "== for reference, the in-process figures of scripts/bench-shop.sh (SQLite and PostgreSQL):"
scripts/bench-shop.sh "$secs" "$buyers"
