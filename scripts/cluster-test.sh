#!/usr/bin/env bash
# The production topology on one machine, all on 127.0.0.1 and free ports: a
# throwaway PostgreSQL, two jo-server nodes on it and nginx in front with
# deploy/nginx/jo.conf and a certificate of deploy/make-test-ca.sh. Through
# nginx over https (curl and Python trusting the test CA, headless Chromium):
#   1. a buyer's whole flow: http→https redirect, HSTS, register, the mail's
#      link, login, cart, checkout, payment, the ticket's QR and PDF, static
#      assets cached by the proxy;
#   2. the last-seats rush across both nodes: exactly as many orders and
#      tickets as seats;
#   3. kill -9 of a node under a steady load of buyers: every request started
#      after it succeeds (on the survivor), no order paid twice, no paid
#      order without its tickets, and a scanner enrolled with --ca-cert
#      syncs through the proxy while the node is down;
#   4. a rolling restart (SIGTERM one node, start it again, then the other)
#      under load: zero failed requests;
#   5. `docker-compose config` accepts deploy/docker-compose.yml.
# Everything started here is stopped at the end, whatever happens.
#   scripts/cluster-test.sh        (after a debug build: cargo build, or scripts/test)
# Uses ${CARGO_TARGET_DIR:-target}/debug/jo-server and jo-scanner: the same
# binaries the tests just built, run with the flags and JO_* variables the
# container image uses.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-target}
[[ "$target" = /* ]] || target="$root/$target"
server="$target/debug/jo-server"
scanner="$target/debug/jo-scanner"
for b in "$server" "$scanner"; do
    [[ -x "$b" ]] || { echo "cluster-test: $b not built (cargo build --workspace)" >&2; exit 1; }
done
for tool in nginx curl openssl psql python3; do
    command -v "$tool" >/dev/null || { echo "cluster-test: $tool missing (scripts/setup-debian.sh)" >&2; exit 1; }
done
nginx_bin=$(command -v nginx)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jo-cluster.XXXXXX")
chmod 755 "$tmp"
pgdir="$tmp/pg"
declare -A node_pid=()
nginx_pid=""
cleanup() {
    local rc=$?
    for n in "${!node_pid[@]}"; do
        kill -TERM "${node_pid[$n]}" 2>/dev/null || true
    done
    for n in "${!node_pid[@]}"; do
        wait "${node_pid[$n]}" 2>/dev/null || true
    done
    [[ -n "$nginx_pid" ]] && kill "$nginx_pid" 2>/dev/null || true
    scripts/pg-throwaway.sh stop "$pgdir" >/dev/null 2>&1 || true
    if [[ $rc -ne 0 ]]; then
        echo "cluster-test: FAILED; logs:" >&2
        for f in "$tmp"/node*.log "$tmp"/nginx/error.log; do
            [[ -f "$f" ]] && { echo "--- $f (last 20 lines)" >&2; tail -n 20 "$f" >&2; }
        done
    fi
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT

step() { echo "== cluster: $*"; }
fail() { echo "cluster-test: $*" >&2; exit 1; }

started_at=$SECONDS
step "PostgreSQL, keys, test CA"
pgurl=$(scripts/pg-throwaway.sh start "$pgdir")
sql() { psql "$pgurl" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }
"$server" keygen --keys "$tmp/keys" >/dev/null
deploy/make-test-ca.sh "$tmp/tls" localhost >/dev/null
ca="$tmp/tls/ca.crt"
# The key sealing TOTP secrets: the same on every node.
mkdir -m 700 "$tmp/node1" "$tmp/node2"
head -c 32 /dev/urandom >"$tmp/node1/totp.key"
chmod 600 "$tmp/node1/totp.key"
cp -p "$tmp/node1/totp.key" "$tmp/node2/totp.key"

read -r port1 port2 https_port http_port mport1 mport2 < <(scripts/free-ports 6)
base="https://localhost:$https_port"
declare -A node_port=([1]=$port1 [2]=$port2)
declare -A metrics_port=([1]=$mport1 [2]=$mport2)

# The load's buyers buy far more tickets of one session than a person may
# (JO_MAX_TICKETS_PER_SESSION, 10 by default): the limit is lifted here.
launch_node() {
    local n=$1
    JO_DATABASE_URL="$pgurl" JO_KEYS_DIR="$tmp/keys" JO_DATA_DIR="$tmp/node$n" \
        JO_BIND="127.0.0.1:${node_port[$n]}" JO_PUBLIC_URL="$base" JO_MAX_TICKETS_PER_SESSION=1000000 \
        JO_TRUSTED_PROXIES=127.0.0.1 JO_METRICS_ADDR="127.0.0.1:${metrics_port[$n]}" JO_SHUTDOWN_GRACE_SECS=10 RUST_LOG=warn NO_COLOR=1 \
        "$server" serve >>"$tmp/node$n.log" 2>&1 &
    node_pid[$n]=$!
}
wait_ready() {
    local n=$1 i
    for i in $(seq 1 150); do
        if curl -fsS "http://127.0.0.1:${node_port[$n]}/readyz" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "${node_pid[$n]}" 2>/dev/null || fail "node $n exited at start"
        sleep 0.1
    done
    fail "node $n not ready after 15 s"
}
start_node() {
    launch_node "$1"
    wait_ready "$1"
}

step "two nodes on one database (started at once), nginx with TLS"
launch_node 1
launch_node 2
wait_ready 1
wait_ready 2

mkdir -p "$tmp/nginx/logs" "$tmp/nginx/cache" "$tmp/nginx/temp"
sed -e "s|server jo1:8080 |server 127.0.0.1:$port1 |" \
    -e "s|server jo2:8080 |server 127.0.0.1:$port2 |" \
    -e "s|listen 80;|listen 127.0.0.1:$http_port;|" \
    -e "s|listen 443 ssl http2;|listen 127.0.0.1:$https_port ssl http2;|" \
    -e "s|/etc/nginx/tls/|$tmp/tls/|" \
    -e "s|/var/cache/nginx/jo|$tmp/nginx/cache|" \
    -e "s|https://\$host\$request_uri|https://\$host:$https_port\$request_uri|" \
    deploy/nginx/jo.conf >"$tmp/nginx/jo.conf"
grep -q "127.0.0.1:$port1" "$tmp/nginx/jo.conf" && grep -q "$tmp/tls/server.key" "$tmp/nginx/jo.conf" \
    || fail "deploy/nginx/jo.conf no longer has the lines this test rewrites"
user_line=""
[[ "$(id -u)" -eq 0 ]] && user_line="user root root;"
cat >"$tmp/nginx/nginx.conf" <<EOF
$user_line
worker_processes 2;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log $tmp/nginx/access.log;
    client_body_temp_path $tmp/nginx/temp/body;
    proxy_temp_path $tmp/nginx/temp/proxy;
    fastcgi_temp_path $tmp/nginx/temp/fastcgi;
    uwsgi_temp_path $tmp/nginx/temp/uwsgi;
    scgi_temp_path $tmp/nginx/temp/scgi;
    types { text/css css; image/svg+xml svg; }
    include $tmp/nginx/jo.conf;
}
EOF
"$nginx_bin" -t -q -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" 2>&1 | grep -v "^$" >&2 || true
"$nginx_bin" -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -g 'daemon off;' 2>>"$tmp/nginx/error.log" &
nginx_pid=$!
for _ in $(seq 1 50); do
    curl -fsS --cacert "$ca" "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS --cacert "$ca" "$base/readyz" | grep -q ready || fail "nginx does not reach the nodes"
[[ "$(sql 'SELECT count(*) FROM schema_version')" -ge 1 ]] || fail "no schema"

# ---------------------------------------------------------------------------
step "1. a buyer's whole flow through the proxy (curl)"
jar="$tmp/jar"
c() { curl -sS --cacert "$ca" -b "$jar" -c "$jar" -H "Origin: $base" "$@"; }
csrf_of() { grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }
# Plain http: a redirect to https only.
loc=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$http_port/sessions?x=1" -H "Host: localhost:$https_port")
[[ "$loc" == "308 https://localhost:$https_port/sessions?x=1" ]] || fail "http→https redirect: $loc"
# HSTS, once; TLS 1.1 refused.
hsts=$(curl -sS --cacert "$ca" -D - -o /dev/null "$base/" | grep -ci '^strict-transport-security: max-age=63072000')
[[ "$hsts" == 1 ]] || fail "expected one HSTS header, got $hsts"
if curl -sS --cacert "$ca" --tls-max 1.1 -o /dev/null "$base/" 2>/dev/null; then
    fail "TLS 1.1 accepted"
fi
# Without the CA: refused by curl (the certificate is the test CA's).
if curl -sS -o /dev/null "$base/" 2>/dev/null; then fail "untrusted certificate accepted"; fi
password='Quatre-chevaux-Seine-2024!'
email="marie@example.com"
token=$(c "$base/register" | csrf_of)
code=$(c -o /dev/null -w '%{http_code} %{redirect_url}' "$base/register" \
    --data-urlencode "csrf=$token" --data-urlencode "username=marie" --data-urlencode "email=$email" \
    --data-urlencode "first_name=Marie" --data-urlencode "last_name=Curie" \
    --data-urlencode "password=$password" --data-urlencode "password_confirm=$password")
[[ "$code" == "303 $base/register/done" ]] || fail "register: $code"
# The verification mail, written to the outbox of whichever node sent it.
link=""
for _ in $(seq 1 100); do
    link=$(python3 - "$tmp/node1/outbox" "$tmp/node2/outbox" "$email" <<'EOF' || true
import email, email.policy, os, re, sys
for d in sys.argv[1:3]:
    for name in (os.listdir(d) if os.path.isdir(d) else []):
        msg = email.message_from_bytes(open(os.path.join(d, name), "rb").read(), policy=email.policy.default)
        if msg["To"] != sys.argv[3]:
            continue
        body = msg.get_body(("plain",)).get_content()
        m = re.search(r"/verify-email\?token=(\S+)", body)
        if m:
            print(m.group(1))
            raise SystemExit
EOF
)
    [[ -n "$link" ]] && break
    sleep 0.1
done
[[ -n "$link" ]] || fail "no verification mail in either node's outbox"
token=$(c "$base/verify-email?token=$link" | csrf_of)
code=$(c -o /dev/null -w '%{http_code}' "$base/verify-email" --data-urlencode "csrf=$token" --data-urlencode "token=$link")
[[ "$code" == 200 ]] || fail "verify-email: $code"
token=$(c "$base/login" | csrf_of)
code=$(c -o /dev/null -w '%{http_code} %{redirect_url}' "$base/login" --data-urlencode "csrf=$token" \
    --data-urlencode "email=$email" --data-urlencode "password=$password")
[[ "$code" == "303 $base/" ]] || fail "login: $code"
# The client's address reached the node through the proxy (X-Forwarded-For).
sid=$(sql "SELECT id FROM game_sessions WHERE code = 'ATH01'")
solo=$(sql "SELECT id FROM offers WHERE name = 'Solo'")
sql "UPDATE game_sessions SET capacity = 1000000 WHERE id = $sid" >/dev/null
token=$(c "$base/cart" | csrf_of)
code=$(c -o /dev/null -w '%{http_code}' "$base/cart/add" --data-urlencode "csrf=$token" \
    -d "session_id=$sid" -d "offer_id=$solo" -d quantity=2)
[[ "$code" == 303 ]] || fail "cart/add: $code"
pay=$(c -o /dev/null -w '%{redirect_url}' "$base/checkout" --data-urlencode "csrf=$token")
[[ "$pay" == "$base/orders/"*"/pay" ]] || fail "checkout: $pay"
page=$(c "$pay")
idem=$(grep -o 'name="idem" value="[^"]*"' <<<"$page" | sed 's/.*value="//; s/"$//')
order=$(c -o /dev/null -w '%{redirect_url}' "$pay" --data-urlencode "csrf=$token" --data-urlencode "idem=$idem" \
    --data-urlencode "card_holder=Marie Curie" --data-urlencode "card_number=4242 4242 4242 4242" \
    --data-urlencode "card_expiry=12/39" --data-urlencode "card_cvv=123")
[[ "$order" == "${pay%/pay}" ]] || fail "pay: redirected to $order"
# Pressing "pay" again (same key) pays nothing more.
c -o /dev/null "$pay" --data-urlencode "csrf=$token" --data-urlencode "idem=$idem" \
    --data-urlencode "card_holder=Marie Curie" --data-urlencode "card_number=4242 4242 4242 4242" \
    --data-urlencode "card_expiry=12/39" --data-urlencode "card_cvv=123"
number=${order##*/}
[[ "$(sql "SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.number = '$number' AND p.status = 'succeeded'")" == 1 ]] \
    || fail "order $number paid other than once"
ticket=$(c "$order" | grep -o 'href="/tickets/[0-9a-f]*/ticket.pdf"' | head -1 | sed 's|href="/tickets/||; s|/ticket.pdf"||')
[[ -n "$ticket" ]] || fail "no ticket on the order page"
c -o "$tmp/ticket.png" "$base/tickets/$ticket/qr.png"
c -o "$tmp/ticket.pdf" "$base/tickets/$ticket/ticket.pdf"
[[ "$(head -c 4 "$tmp/ticket.png" | od -An -c | tr -d ' ')" == "211PNG" ]] || fail "the QR is no PNG"
[[ "$(head -c 5 "$tmp/ticket.pdf")" == "%PDF-" ]] || fail "the ticket is no PDF"
[[ "$(sql "SELECT count(*) FROM tickets t JOIN orders o ON o.id = t.order_id WHERE o.number = '$number'")" == 2 ]] \
    || fail "order $number does not hold 2 tickets"
# Static assets: cached by the proxy the second time.
curl -sS --cacert "$ca" -o /dev/null "$base/static/style.css"
cache=$(curl -sS --cacert "$ca" -D - -o /dev/null "$base/static/style.css" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache-status"{print $2}')
[[ "$cache" == HIT ]] || fail "static asset not cached by the proxy ($cache)"
# A body over the site's limit stops at the proxy.
code=$(head -c 70000 /dev/zero | tr '\0' a | curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' --data-binary @- "$base/login")
[[ "$code" == 413 ]] || fail "a 70 kB form got $code, not 413"
# A real browser over the same TLS (the test CA is not in its store, so
# certificate errors are ignored for this self-signed test CA only).
if command -v chromium >/dev/null; then
    html=$(timeout 60 chromium --headless=new --no-sandbox --disable-gpu --ignore-certificate-errors \
        --user-data-dir="$tmp/chromium" --dump-dom "$base/sessions" 2>/dev/null || true)
    grep -q 'href="/sessions/' <<<"$html" || fail "headless Chromium did not get the session list"
fi
echo "   buyer flow ok: order $number, 2 tickets, QR and PDF; redirect, HSTS, TLS ≥ 1.2, cache, 413"

# Buyers for the load phases: copies of this verified account (same password).
make_buyers() {
    local prefix=$1 n=$2
    sql "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key, role, email_verified_at, created_at)
         SELECT '$prefix' || g, '$prefix' || g || '@example.com', 'Jean', 'Dupont', u.password_hash,
                decode(md5(random()::text) || md5(random()::text), 'hex'), 'buyer', 1, 1
         FROM users u, generate_series(0, $n - 1) g WHERE u.email = '$email'" >/dev/null
}
export JO_LOAD_PASSWORD="$password"
loader() { python3 scripts/cluster-load.py --base "$base" --ca "$ca" "$@"; }
wait_for_file() {
    local file=$1 pid=$2
    while [[ ! -e "$file" ]]; do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; fail "the load driver ended before its buyers were ready"; }
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------
step "2. the last 10 seats, 40 buyers, both nodes behind the proxy"
make_buyers rush 40
rush_sid=$(sql "SELECT id FROM game_sessions WHERE code = 'TEN10'")
sql "UPDATE game_sessions SET seats_taken = capacity - 10 WHERE id = $rush_sid" >/dev/null
loader race --users 40 --prefix rush --session "$rush_sid" --offer "$solo" --expect 10
[[ "$(sql "SELECT count(*) FROM tickets WHERE session_id = $rush_sid")" == 10 ]] || fail "not exactly 10 tickets"
[[ "$(sql "SELECT seats_taken = capacity FROM game_sessions WHERE id = $rush_sid")" == t ]] || fail "oversold"

# ---------------------------------------------------------------------------
step "3. kill -9 of node 2 under load; a scanner syncs through the proxy meanwhile"
make_buyers load 12
# enroll-code reads the keyring under DATA/keys.
ln -s "$tmp/keys" "$tmp/node1/keys"
code_out=$("$server" enroll-code --data "$tmp/node1" --database "$pgurl" 2>&1 >"$tmp/enroll.code") \
    || fail "enroll-code: $code_out"
fingerprint=$(grep -o 'keyring [0-9a-f]\{64\}' <<<"$code_out" | awk '{print $2}' || true)
[[ -n "$fingerprint" ]] || fail "no keyring fingerprint from enroll-code: $code_out"
"$scanner" --state "$tmp/scanner" enroll --server "$base" --code "$(cat "$tmp/enroll.code")" \
    --keyring "$fingerprint" --ca-cert "$ca" --label "Porte A" >/dev/null \
    || fail "jo-scanner enroll --ca-cert through nginx failed"
"$scanner" --state "$tmp/scanner" configure --gate "Porte A" >/dev/null 2>&1 || true
"$scanner" --state "$tmp/scanner" sync >"$tmp/sync1.json" || fail "scanner sync through nginx: $(cat "$tmp/sync1.json")"
loader load --users 12 --prefix load --session "$sid" --offer "$solo" --home-share 0.2 \
    --until "$tmp/stop3" --tolerate-before "$tmp/killed_at" --ready "$tmp/ready3" >"$tmp/load3.json" &
load_pid=$!
wait_for_file "$tmp/ready3" "$load_pid"
sleep 3
date +%s.%N >"$tmp/killed_at"
kill -9 "${node_pid[2]}"
wait "${node_pid[2]}" 2>/dev/null || true
unset 'node_pid[2]'
sleep 1
# The gate scans the buyer's ticket and uploads it, with node 2 gone.
"$scanner" --state "$tmp/scanner" --now "$(date +%s)" verify "$tmp/ticket.png" >"$tmp/verify.json" 2>&1 || true
"$scanner" --state "$tmp/scanner" sync >"$tmp/sync2.json" || fail "scanner sync with node 2 dead: $(cat "$tmp/sync2.json")"
sleep 4
touch "$tmp/stop3"
wait "$load_pid" || fail "requests failed after the kill: $(cat "$tmp/load3.json")"
echo "   $(cat "$tmp/load3.json")"
[[ "$(sql "SELECT count(*) FROM (SELECT order_id FROM payments WHERE status = 'succeeded' GROUP BY order_id HAVING count(*) > 1) x")" == 0 ]] \
    || fail "an order was paid twice"
[[ "$(sql "SELECT count(*) FROM orders o WHERE o.status = 'paid' AND (SELECT count(*) FROM tickets t WHERE t.order_id = o.id) < (SELECT sum(quantity) FROM order_lines l WHERE l.order_id = o.id)")" == 0 ]] \
    || fail "a paid order lacks tickets"
[[ "$(sql "SELECT count(*) FROM tickets t JOIN orders o ON o.id = t.order_id WHERE o.status NOT IN ('paid', 'refunded')")" == 0 ]] \
    || fail "a ticket without a paid order"
uploaded=$(sql "SELECT count(*) FROM scans")
# The survivor's metrics (its own address, not through the proxy): routes by
# pattern, never raw paths with order numbers.
metrics=$(curl -fsS "http://127.0.0.1:${metrics_port[1]}/metrics")
for want in 'jo_http_requests_duration_seconds_bucket{method="POST",route="/orders/{number}/pay",status="303"' \
    'jo_checkouts_total{outcome="ordered"}' 'jo_payments_total{outcome="paid"}' \
    'jo_tickets_issued_total' 'jo_db_pool_wait_seconds_count' 'jo_mail_outbox_depth'; do
    grep -qF "$want" <<<"$metrics" || fail "metrics lack $want"
done
if grep -q 'route="/orders/[0-9A-Z]' <<<"$metrics"; then fail "a raw order path in the metrics' labels"; fi
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$ca" "$base/metrics")
[[ "$code" == 404 ]] || fail "/metrics reachable through the proxy ($code)"
echo "   scanner: enrolled with --ca-cert, synced before and after the kill; $uploaded scan(s) on the server"

# ---------------------------------------------------------------------------
step "4. rolling restart under load: zero failed requests"
start_node 2
# nginx left node 2 out after the kill (fail_timeout=10s): wait until it
# is tried again, so that both nodes serve when the restart begins.
sleep 11
loader load --users 12 --prefix load --session "$sid" --offer "$solo" --home-share 0.2 \
    --until "$tmp/stop4" --ready "$tmp/ready4" >"$tmp/load4.json" &
load_pid=$!
wait_for_file "$tmp/ready4" "$load_pid"
sleep 2
for n in 1 2; do
    kill -TERM "${node_pid[$n]}"
    wait "${node_pid[$n]}" || fail "node $n did not exit cleanly on SIGTERM"
    start_node "$n"
    # Until nginx tries the restarted node again (its refusals during the
    # restart marked it failed for fail_timeout).
    sleep 11
done
touch "$tmp/stop4"
wait "$load_pid" || fail "requests failed during the rolling restart: $(cat "$tmp/load4.json")"
echo "   $(cat "$tmp/load4.json")"

# ---------------------------------------------------------------------------
step "5. docker-compose config"
if command -v docker-compose >/dev/null; then
    docker-compose -f deploy/docker-compose.yml --env-file deploy/.env.example config -q \
        || fail "deploy/docker-compose.yml does not validate"
else
    fail "docker-compose missing (scripts/setup-debian.sh installs it)"
fi
echo "== cluster: all passed in $((SECONDS - started_at)) s"
