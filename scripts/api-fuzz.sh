#!/usr/bin/env bash
# Property-based fuzzing of the scanners' sync API against its own OpenAPI
# document, with schemathesis (from PyPI, in a venv under target/).
#
#   scripts/api-fuzz.sh [max examples per operation, default 100]
#
# JO_SERVER_BIN names a jo-server binary already built (scripts/test passes
# the one `cargo test` built); without it the script builds one.
#
# Starts a real `jo-server serve` on a free port with a temporary data
# directory, makes an enrolment code with the CLI, enrols a device with curl,
# then runs schemathesis with the device's bearer token. Fails on any 5xx,
# any undocumented status, content type or header, and any answer that does
# not match its schema. Runs unattended (CI); needs python3 (venv) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${1:-100}"
venv=target/api-fuzz-venv
if [[ ! -x "$venv/bin/schemathesis" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi

bin="${JO_SERVER_BIN:-}"
if [[ -z "$bin" ]]; then
    cargo build --quiet --locked -p jo-server
    bin=target/debug/jo-server
fi

data="$(mktemp -d)"
log="$data/server.log"
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$data"
}
trap cleanup EXIT

port="$(scripts/free-ports)"
base="http://127.0.0.1:$port"
# A generous rate limit: the fuzzer is one device sending thousands of requests.
JO_API_RATE_PER_SEC=100000 JO_API_RATE_BURST=1000000 JO_ENROLL_RATE_PER_MIN=100000 \
    "$bin" serve --bind "127.0.0.1:$port" --data "$data/srv" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -fsS "$base/api/v1/openapi.json" -o /dev/null 2>/dev/null && break
    sleep 0.2
done
curl -fsS "$base/api/v1/openapi.json" -o "$data/openapi.json" || { cat "$log"; exit 1; }

code="$("$bin" enroll-code --data "$data/srv" | grep -Eo '[0-9a-z]{4}(-[0-9a-z]{4}){4}' | head -n1)"
pubkey="$(python3 -c 'import base64; print(base64.urlsafe_b64encode(bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")).decode().rstrip("="))')"
token="$(curl -fsS -H 'content-type: application/json' \
    -d "{\"code\":\"$code\",\"device_public_key\":\"$pubkey\",\"label\":\"api-fuzz\"}" \
    "$base/api/v1/enroll" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
st=("$venv/bin/schemathesis" run "$base/api/v1/openapi.json"
    --checks "$checks" --max-examples "$examples" --seed 20240726
    --generation-database none --no-color --workers 2
    --suppress-health-check all)

status=0
# Every operation but the token roll, with a live token.
"${st[@]}" -H "Authorization: Bearer $token" --exclude-path /api/v1/token || status=1
# The token roll last: it replaces the token, so later calls get 401 (documented).
"${st[@]}" -H "Authorization: Bearer $token" --include-path /api/v1/token || status=1

if grep -q 'internal error' "$log"; then
    echo "the server logged internal errors:" >&2
    grep 'internal error' "$log" >&2
    status=1
fi
exit "$status"
